import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** Smoke tests of the `starstream` command line, run as a user runs it: a child process. */

const repo = fileURLToPath(new URL('../../', import.meta.url));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `timeoutMs` kills a hung CLI; it is no speed bound, so it is far beyond a run on a loaded machine. */
function starstream(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 600_000): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  // The parent's test runner must not leak into the child (it would run the CLI as a test file).
  delete childEnv.NODE_TEST_CONTEXT;
  for (const name of Object.keys(childEnv)) if (name.startsWith('STARSTREAM_') && !(name in env)) delete childEnv[name];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/index.ts', ...args],
      { cwd: repo, env: childEnv, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('starstream demo', () => {
  const dir = mkdtempSync(join(tmpdir(), 'starstream-demo-'));
  const out = join(dir, 'recs.jsonl');
  let run: Run;
  before(async () => {
    run = await starstream(['demo', '--events', '3000', '--users', '200', '--items', '400', '--out', out], { STARSTREAM_LOG_LEVEL: 'warn' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const summaryNumber = (label: string): number => {
    const line = run.stdout.split('\n').find((l) => l.trimStart().startsWith(label));
    assert.ok(line, `summary has a "${label}" line:\n${run.stdout}`);
    return Number(line.slice(line.indexOf(label) + label.length).trim().split(/\s/)[0]!.replace(/,/g, ''));
  };

  it('exits 0 and prints the summary with a dead-letters line', () => {
    assert.equal(run.code, 0, run.stderr.slice(-2_000));
    assert.match(run.stdout, /starstream demo summary/);
    assert.equal(summaryNumber('events'), 3_000);
    assert.equal(summaryNumber('dead letters'), 0, 'no malformed records at this size (every 5000th is garbage)');
    assert.ok(summaryNumber('recommendations') > 0);
    assert.ok(run.stdout.includes(out), 'names the output file');
  });

  it('explains hit@10 and says what to try next', () => {
    assert.match(run.stdout, /hit@10: the share of cases/);
    assert.match(run.stdout, /^next: .*starstream replay ml-100k/m);
  });

  it('writes one parsed recommendation per line, with eventId, userId and items', () => {
    const lines = readFileSync(out, 'utf8').split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, summaryNumber('recommendations'));
    const eventIds = new Set<string>();
    for (const line of lines) {
      const rec = JSON.parse(line) as { eventId: unknown; userId: unknown; items: unknown; modelVersion: unknown };
      assert.equal(typeof rec.eventId, 'string');
      assert.match(rec.userId as string, /^u\d+$/);
      assert.ok(Array.isArray(rec.items));
      assert.equal(typeof rec.modelVersion, 'string');
      for (const item of rec.items as { itemId: string; score: number; evidence: string[] }[]) {
        assert.match(item.itemId, /^i\d+$/);
        assert.equal(typeof item.score, 'number');
        assert.ok(Array.isArray(item.evidence));
      }
      eventIds.add(rec.eventId as string);
    }
    assert.equal(eventIds.size, lines.length, 'one recommendation per triggering event');
  });

  it('accounts for every event: a recommendation in the file or a dead letter', () => {
    const lines = readFileSync(out, 'utf8').split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length + summaryNumber('dead letters'), 3_000);
  });
});

describe('starstream demo --out-limit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'starstream-demo-limit-'));
  const out = join(dir, 'recs.jsonl');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('rotates the recommendations file at the limit: at most two files, each within it, and the summary counts what went where', async () => {
    const run = await starstream(['demo', '--events', '1500', '--users', '100', '--items', '300', '--out', out, '--out-limit', '1MB'], { STARSTREAM_LOG_LEVEL: 'warn' });
    assert.equal(run.code, 0, run.stderr.slice(-2_000));
    const line = run.stdout.split('\n').find((l) => l.includes('recommendations written to'))!;
    const m = /the last ([\d,]+); ([\d,]+) before them in (\S+), the ([\d,]+) before those dropped: --out-limit 1 MB per file/.exec(line);
    assert.ok(m, line);
    const [last, before, dropped] = [m[1]!, m[2]!, m[4]!].map((x) => Number(x.replace(/,/g, ''))) as [number, number, number];
    assert.equal(m[3], `${out}.1`);
    const lines = (path: string): string[] => readFileSync(path, 'utf8').split('\n').filter((l) => l.length > 0);
    assert.equal(lines(out).length, last);
    assert.equal(lines(`${out}.1`).length, before);
    for (const path of [out, `${out}.1`]) assert.ok(statSync(path).size <= 1_000_000, `${path}: ${statSync(path).size} bytes`);
    const recommendations = Number(run.stdout.split('\n').find((l) => l.trimStart().startsWith('recommendations '))!.trim().split(/\s+/)[1]!.replace(/,/g, ''));
    assert.equal(last + before + dropped, recommendations);
    assert.ok(dropped > 0, 'a 1 MB limit drops part of ~3 MB');
  });
});

describe('starstream config check', () => {
  it('exits 2 and names the field of a bad env value', async () => {
    const run = await starstream(['config', 'check'], { STARSTREAM_STORE__DIMENSION: '-1' });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /store\.dimension/);
    assert.equal(run.stdout, '');
  });

  it('prints the validated config, secrets redacted, and exits 0', async () => {
    const run = await starstream(['config', 'check'], { STARSTREAM_STORE__DIMENSION: '16', STARSTREAM_OPS__API_TOKEN: 'top-secret' });
    assert.equal(run.code, 0, run.stderr);
    const printed = JSON.parse(run.stdout) as { store: { dimension: number }; ops: { apiToken: string } };
    assert.equal(printed.store.dimension, 16);
    assert.equal(printed.ops.apiToken, '[redacted]');
    assert.ok(!run.stdout.includes('top-secret'));
  });
});
