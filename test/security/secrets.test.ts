import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { unwrap } from '../../src/config/fields.ts';
import { configSchema } from '../../src/config/schema.ts';

/**
 * Secrets are read from the environment or from `*_FILE` files and never written anywhere: not in the logs
 * (at trace level), not in the demo's report, not in `starstream config check` (which redacts), not in the
 * errors of a run whose Kafka, schema registry and Qdrant are all unreachable. Every secret field of the
 * config schema is covered (found by name, so a new one is picked up), plus credentials in the schema
 * registry URL.
 */

const repo = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'starstream-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Env names of every secret field of the schema (password, apiKey, apiToken). */
function secretFields(schema: z.ZodType = configSchema, path: string[] = []): string[][] {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) return Object.entries(inner.shape as Record<string, z.ZodType>).flatMap(([k, child]) => secretFields(child, [...path, k]));
  return /password|apiKey|apiToken/i.test(path.at(-1) ?? '') ? [path] : [];
}
const envName = (path: readonly string[]): string => `STARSTREAM_${path.map((p) => p.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()).join('__')}`;
const SECRET_FIELDS = secretFields();

interface Secrets {
  readonly env: Record<string, string>;
  readonly values: readonly string[];
}

/** A distinct random value for every secret field, as env values or as files named by `*_FILE`. */
function secrets(via: 'env' | 'file'): Secrets {
  const env: Record<string, string> = {
    // The SASL object needs its other fields; only the password is secret.
    STARSTREAM_EVENT_LOG__KAFKA__SASL: JSON.stringify({ mechanism: 'scram-sha-512', username: 'starstream-svc' }),
  };
  const values: string[] = [];
  for (const path of SECRET_FIELDS) {
    const value = `s3cret-${path.at(-1)}-${randomBytes(9).toString('base64url')}`;
    values.push(value);
    if (via === 'env') env[envName(path)] = value;
    else {
      const file = join(dir, `${path.join('.')}-${randomBytes(4).toString('hex')}`);
      writeFileSync(file, `${value}\n`, { mode: 0o600 });
      env[`${envName(path)}_FILE`] = file;
    }
  }
  const registryPassword = `regpw-${randomBytes(9).toString('base64url')}`;
  values.push(registryPassword);
  env.STARSTREAM_EVENT_LOG__KAFKA__SCHEMA_REGISTRY_URL = `http://registry-user:${registryPassword}@127.0.0.1:9/`;
  return { env, values };
}

interface Run {
  readonly code: number | null;
  readonly output: string;
  /** Whether the hang guard had to SIGKILL it (it did not exit by itself or on SIGTERM). */
  readonly killed: boolean;
}

/** A guard against a hung child only, never a measure of speed: far beyond a start on a loaded machine. */
const HANG_GUARD_MS = 180_000;

/**
 * Runs the CLI as a user does, with only the given STARSTREAM_* variables. `termWhen`: SIGTERM once the output
 * shows that pattern (what the test needs to have happened), not after a fixed time, which a loaded machine
 * (2–6 s just to start the CLI) can overrun.
 */
function starstream(args: readonly string[], env: Record<string, string>, options: { termWhen?: RegExp } = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, STARSTREAM_LOG_LEVEL: 'trace' };
  delete childEnv.NODE_TEST_CONTEXT;
  for (const name of Object.keys(childEnv)) if (name.startsWith('STARSTREAM_') && !(name in env) && name !== 'STARSTREAM_LOG_LEVEL') delete childEnv[name];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], { cwd: repo, env: childEnv });
    let output = '';
    let termed = false;
    let killed = false;
    const onData = (d: Buffer): void => {
      output += d.toString();
      if (options.termWhen && !termed && options.termWhen.test(output)) {
        termed = true;
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const kill = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, HANG_GUARD_MS);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, output, killed });
    });
  });
}

function assertNoSecret(run: Run, s: Secrets, what: string): void {
  for (const value of s.values) assert.ok(!run.output.includes(value), `${what} printed a secret (${value.slice(0, 14)}…):\n${run.output.slice(0, 2_000)}`);
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('secrets never reach logs or output', () => {
  it('finds the secret fields of the schema (Kafka SASL password, Qdrant API key, ops API token at least)', () => {
    const names = SECRET_FIELDS.map((p) => p.join('.'));
    for (const expected of ['eventLog.kafka.sasl.password', 'store.qdrant.apiKey', 'ops.apiToken']) assert.ok(names.includes(expected), `${expected} in ${names.join(', ')}`);
  });

  for (const via of ['env', 'file'] as const) {
    it(`demo run with every secret from ${via === 'env' ? 'env' : '*_FILE files'}: trace logs and report hold none`, async () => {
      const s = secrets(via);
      const run = await starstream(['demo', '--events', '300', '--users', '30', '--items', '60', '--out', join(dir, `recs-${via}.jsonl`)], s.env);
      assert.equal(run.code, 0, run.output);
      assert.match(run.output, /starstream demo summary/);
      assertNoSecret(run, s, 'demo');
      // The metrics/health server binds to ops.host, loopback unless configured otherwise.
      assert.match(run.output, /metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/);
    });

    it(`config check with every secret from ${via === 'env' ? 'env' : '*_FILE files'} redacts them (registry URL password too)`, async () => {
      const s = secrets(via);
      const run = await starstream(['config', 'check'], s.env);
      assert.equal(run.code, 0, run.output);
      assertNoSecret(run, s, 'config check');
      const config = JSON.parse(run.output.slice(run.output.indexOf('{'))) as { eventLog: { kafka: { sasl: { password: string }; schemaRegistryUrl: string } } };
      assert.equal(config.eventLog.kafka.sasl.password, '[redacted]');
      assert.match(config.eventLog.kafka.schemaRegistryUrl, /^http:\/\/registry-user:redacted@127\.0\.0\.1:9\/?$/);
    });
  }

  it('runs against unreachable Kafka (SASL) and schema registry, or Qdrant (API key), stop without printing a secret', async () => {
    const s = secrets('env');
    const common = { ...s.env, STARSTREAM_OPS__PORT: '0', STARSTREAM_SHUTDOWN_DEADLINE_MS: '3000' };
    const quickRetry = JSON.stringify({ retries: 1, initialDelayMs: 50, maxDelayMs: 100 });
    const [kafka, qdrant] = await Promise.all([
      // Kafka down: the pipeline keeps retrying (a broker outage is transient) until SIGTERM.
      starstream(
        ['run'],
        {
          ...common,
          STARSTREAM_EVENT_LOG__KIND: 'kafka',
          STARSTREAM_EVENT_LOG__KAFKA__BROKERS: JSON.stringify([`127.0.0.1:${await closedPort()}`]),
          STARSTREAM_EVENT_LOG__KAFKA__CONNECTION_TIMEOUT_MS: '300',
          STARSTREAM_EVENT_LOG__KAFKA__RETRY: quickRetry,
        },
        // Stopped once the Kafka client has logged a connection attempt: what the assertions below look at.
        { termWhen: /"component":"kafkajs"/ },
      ),
      // Qdrant down: the store's retries run out and the run exits 1.
      starstream(
        ['run'],
        { ...common, STARSTREAM_STORE__KIND: 'qdrant', STARSTREAM_STORE__QDRANT__URL: `http://127.0.0.1:${await closedPort()}`, STARSTREAM_STORE__RETRY: quickRetry },
      ),
    ]);
    for (const [what, run] of [['kafka', kafka], ['qdrant', qdrant]] as const) {
      assert.equal(run.killed, false, `${what}: it stopped (on SIGTERM or by itself) without being killed:\n${run.output.slice(-2_000)}`);
      assert.notEqual(run.code, 0, `${what}: nothing is reachable, the run does not succeed`);
      assert.doesNotMatch(run.output, /starstream: config/, `${what}: the config was valid, the failure is the unreachable service`);
      assertNoSecret(run, s, `run (${what} down)`);
    }
    assert.match(kafka.output, /"component":"kafkajs"/, 'the Kafka client logged (at trace) what it tried');
    assert.match(qdrant.output, /ECONNREFUSED/, 'the Qdrant failure is reported');
  });
});

describe('a run that cannot start', () => {
  it('reports why and exits non-zero by itself instead of hanging on its open servers (regression)', async () => {
    // kafkajs refuses an idempotent producer without retries when the runner starts, after the ops server and
    // the clients are open: before the fix the error was printed and the process never exited.
    const run = await starstream(
      ['run'],
      {
        STARSTREAM_EVENT_LOG__KIND: 'kafka',
        STARSTREAM_EVENT_LOG__KAFKA__BROKERS: JSON.stringify([`127.0.0.1:${await closedPort()}`]),
        STARSTREAM_EVENT_LOG__KAFKA__RETRY: JSON.stringify({ retries: 0 }),
        STARSTREAM_OPS__PORT: '0',
      },
    );
    // No SIGTERM is sent: a run that hangs is killed only by the hang guard, which this reports.
    assert.equal(run.killed, false, `it exited by itself: ${run.output.slice(0, 1_000)}`);
    assert.ok(run.code !== null && run.code !== 0, `exit code ${run.code}: ${run.output.slice(0, 1_000)}`);
    assert.match(run.output, /starstream: /, 'the reason is printed');
  });

});
