import { execFile, spawn, type ChildProcess } from 'node:child_process';
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

/** A `starstream` child that keeps running (`--serve`): its output so far, and a way to wait for a line of it. */
export interface Running {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` on stdout; rejects if the child exits first. No time bound. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startStarstream(args: readonly string[], options: { env?: Record<string, string>; cwd?: string } = {}): Running {
  const env = options.env ?? {};
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.NODE_TEST_CONTEXT;
  for (const name of Object.keys(childEnv)) if (name.startsWith('STARSTREAM_') && !(name in env)) delete childEnv[name];
  const child = spawn(process.execPath, ['--import', TSX, ENTRY, ...args], { cwd: options.cwd ?? REPO, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          const m = pattern.exec(out);
          if (m) resolve(m);
          return m !== null;
        };
        if (check()) return;
        const onData = (): void => {
          if (check()) child.stdout.off('data', onData);
        };
        child.stdout.on('data', onData);
        void exited.then((code) => reject(new Error(`starstream ${args.join(' ')} exited (${code}) before ${pattern}:\n${out}\n${err.slice(-3_000)}`)));
      }),
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
