import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Runs the `starstream` command line as a user runs it: a child process, through tsx from src/. */

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const ENTRY = fileURLToPath(new URL('../../src/cli/index.ts', import.meta.url));
/** tsx's loader by URL, so a child started in another folder (a temporary cwd) finds it. */
const TSX = import.meta.resolve('tsx');

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `timeoutMs` kills a hung CLI; it is no speed bound, so it is far beyond a run on a loaded machine. The
 * parent's STARSTREAM_* variables never leak into the child; `env` sets the child's own.
 */
export function starstream(args: readonly string[], options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  const env = options.env ?? {};
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  // The parent's test runner must not leak into the child (it would run the CLI as a test file).
  delete childEnv.NODE_TEST_CONTEXT;
  for (const name of Object.keys(childEnv)) if (name.startsWith('STARSTREAM_') && !(name in env)) delete childEnv[name];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', TSX, ENTRY, ...args],
      { cwd: options.cwd ?? REPO, env: childEnv, timeout: options.timeoutMs ?? 600_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The lines of stderr that are not JSON log lines. */
export function plainLines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0 && !l.startsWith('{'));
}
