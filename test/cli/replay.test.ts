import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { plainLines, starstream, type Run } from './helpers.ts';

const DEFAULT_PORT = 9464;

/** Holds the default ops port, as a `starstream run` beside the replay would; null when something else holds it. */
function holdPort(port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

const line = (o: Record<string, unknown>): string => JSON.stringify(o);

describe('starstream replay FILE.jsonl on the embedded log', () => {
  const dir = mkdtempSync(join(tmpdir(), 'starstream-replay-'));
  const file = join(dir, 'my.events.jsonl');
  let run: Run;
  let held: Server | null = null;
  before(async () => {
    writeFileSync(
      file,
      [
        line({ eventId: 'e1', userId: 'u1', itemId: 'i1', type: 'click', timestampMs: 1_000 }),
        '{bad json',
        line({ eventId: 'e2', userId: 'u1', itemId: 'i2', type: 'click', timestampMs: 2_000 }),
        line({ eventId: 'e3', userId: 'u2', itemId: 'i1', type: 'nope', timestampMs: 3_000 }),
        line({ eventId: 'e4', userId: 'u2', itemId: 'i2', type: 'click', timestampMs: 4_000 }),
      ].join('\n'),
    );
    // The default port taken: the replay must not die with EADDRINUSE. Whoever holds it, it is taken.
    held = await holdPort(DEFAULT_PORT);
    run = await starstream(['replay', file], { cwd: dir, env: { STARSTREAM_LOG_LEVEL: 'warn' } });
  });
  after(async () => {
    await new Promise<void>((resolve) => (held ? held.close(() => resolve()) : resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs on a free port when the default one is taken, and says which', () => {
    assert.equal(run.code, 0, run.stderr.slice(-2_000));
    assert.match(run.stderr, new RegExp(`port ${DEFAULT_PORT} is in use; serving metrics on a free port instead`));
    const url = /metrics on (http:\/\/\S+)\/metrics/.exec(run.stderr)?.[1];
    assert.ok(url && !url.endsWith(`:${DEFAULT_PORT}`), run.stderr);
  });

  it('titles its summary by what ran', () => {
    assert.match(run.stdout, /starstream replay my\.events summary/);
    assert.doesNotMatch(run.stdout, /demo summary/);
  });

  it('writes out/replay-<file name>.jsonl in the working directory', () => {
    assert.match(run.stdout, /recommendations written to\s+out\/replay-my\.events\.jsonl/);
    const out = join(dir, 'out', 'replay-my.events.jsonl');
    assert.ok(existsSync(out));
    assert.equal(readFileSync(out, 'utf8').trim().split('\n').length, 3, 'one recommendation per valid event');
  });

  it('counts the malformed lines in the summary', () => {
    assert.match(run.stdout, /events\s+3\n/);
    assert.match(run.stdout, /malformed input lines skipped\s+2 \(first: line 2: invalid JSON/);
  });
});

describe('starstream run on the embedded default', () => {
  it('says why nothing arrives when nothing does, and still stops cleanly on SIGTERM', async () => {
    const tsx = import.meta.resolve('tsx');
    const entry = fileURLToPath(new URL('../../src/cli/index.ts', import.meta.url));
    const env: NodeJS.ProcessEnv = { ...process.env, STARSTREAM_OPS__PORT: '0', STARSTREAM_LOG_LEVEL: 'warn' };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, ['--import', tsx, entry, 'run'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // No wall-clock bound: waits for the hint however long a loaded machine takes (the runner's timeout catches a hang).
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (/no events in \d+ s/.test(stderr)) resolve();
      });
      child.on('exit', () => reject(new Error(`run exited before the hint:\n${stderr}`)));
    });
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    const hint = plainLines(stderr).find((l) => l.includes('no events in'));
    assert.match(hint ?? '', /embedded event log lives in this process.*starstream demo.*STARSTREAM_EVENT_LOG__KIND=kafka/);
  });
});
