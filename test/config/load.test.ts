import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { configFromEnv, loadConfig, parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ConfigError, FatalError } from '../../src/errors/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'starstream-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** Runs `fn`, expects a ConfigError and returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.ok(err instanceof FatalError, 'a config error is fatal');
    assert.equal(err.code, 'CONFIG_INVALID');
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig defaults', () => {
  it('gives the documented defaults with no sources at all', () => {
    const c = loadConfig();
    assert.equal(c.logLevel, 'info');
    assert.equal(c.eventLog.kind, 'embedded');
    assert.deepEqual(c.eventLog.kafka.brokers, ['localhost:9092']);
    assert.equal(c.eventLog.kafka.ssl, false);
    assert.equal(c.eventLog.kafka.retry.retries, 5);
    assert.equal(c.eventLog.topics.prefix, 'starstream.');
    assert.equal(c.eventLog.topics.partitions, 6);
    assert.equal(c.store.kind, 'embedded');
    assert.equal(c.store.dimension, 32);
    assert.equal(c.store.consumedFilterBytes, 1024);
    assert.equal(c.store.embedded.path, undefined);
    assert.equal(c.store.qdrant.url, 'http://localhost:6333');
    assert.equal(c.store.retry.maxDelayMs, 5_000);
    assert.equal(c.candidates.maxCandidates, 100);
    assert.equal(c.ranking.topK, 10);
    assert.equal(c.ranking.scorer, 'baseline');
    assert.equal(c.publish.minIntervalPerUserMs, 0);
    assert.equal(c.pipeline.rankingEnabled, true);
    assert.equal(c.pipeline.maxEventAgeMs, 0);
    assert.equal(c.ops.port, 9464);
    assert.equal(c.ops.apiToken, undefined);
    assert.equal(c.shutdownDeadlineMs, 25_000);
  });

  it('gives the same config for an empty env, an empty file and empty overrides', () => {
    const empty = file('empty.json', '{}');
    assert.deepEqual(loadConfig({ file: empty, env: {}, overrides: {} }), loadConfig());
  });
});

describe('loadConfig from the environment', () => {
  it('maps STARSTREAM_A__B_C to a.bC and parses JSON arrays, numbers and booleans', () => {
    const c = loadConfig({
      env: {
        STARSTREAM_EVENT_LOG__KAFKA__BROKERS: '["a:1"]',
        STARSTREAM_STORE__DIMENSION: '16',
        STARSTREAM_EVENT_LOG__KAFKA__SSL: 'true',
        STARSTREAM_PIPELINE__RANKING_ENABLED: 'false',
        STARSTREAM_STORE__EMBEDDED__HNSW_EF_SEARCH: '99',
        STARSTREAM_EMBEDDINGS__LEARNING_RATE: '0.5',
        STARSTREAM_LOG_LEVEL: 'warn',
        STARSTREAM_PIPELINE__GROUP_ID: 'my-group',
      },
    });
    assert.deepEqual(c.eventLog.kafka.brokers, ['a:1']);
    assert.equal(c.store.dimension, 16);
    assert.equal(c.eventLog.kafka.ssl, true);
    assert.equal(c.pipeline.rankingEnabled, false);
    assert.equal(c.store.embedded.hnswEfSearch, 99);
    assert.equal(c.embeddings.learningRate, 0.5);
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.pipeline.groupId, 'my-group', 'a value that is not JSON stays a string');
  });

  it('ignores variables without the prefix and unset ones', () => {
    const c = loadConfig({ env: { PATH: '/bin', DIMENSION: '3', STORE__DIMENSION: '3', STARSTREAM_STORE__DIMENSION: undefined } });
    assert.equal(c.store.dimension, 32);
  });

  it('reads a *_FILE variable from the file it names, trimmed', () => {
    const secret = file('token', '  s3cret-token \n');
    const password = file('password', 'hunter2\n');
    const c = loadConfig({
      env: {
        STARSTREAM_OPS__API_TOKEN_FILE: secret,
        STARSTREAM_EVENT_LOG__KAFKA__SASL: '{"mechanism":"plain","username":"svc"}',
        STARSTREAM_EVENT_LOG__KAFKA__SASL__PASSWORD_FILE: password,
      },
    });
    assert.equal(c.ops.apiToken, 's3cret-token');
    assert.deepEqual(c.eventLog.kafka.sasl, { mechanism: 'plain', username: 'svc', password: 'hunter2' });
  });

  it(
    'combines a JSON object variable with variables nested under it, whatever their order',
    () => {
      const env = {
        STARSTREAM_EVENT_LOG__KAFKA__SASL__PASSWORD: 'hunter2',
        STARSTREAM_EVENT_LOG__KAFKA__SASL: '{"mechanism":"plain","username":"svc"}',
      };
      assert.deepEqual(loadConfig({ env }).eventLog.kafka.sasl, { mechanism: 'plain', username: 'svc', password: 'hunter2' });
    },
  );

  it('takes a *_FILE secret as a string even when it looks like JSON', () => {
    const c = loadConfig({ env: { STARSTREAM_OPS__API_TOKEN_FILE: file('numeric', '123456\n') } });
    assert.equal(c.ops.apiToken, '123456');
  });

  it('names the variable when its *_FILE cannot be read', () => {
    const err = configError(() => loadConfig({ env: { STARSTREAM_OPS__API_TOKEN_FILE: join(dir, 'missing') } }));
    assert.equal(err.field, 'STARSTREAM_OPS__API_TOKEN_FILE');
    assert.match(err.message, /STARSTREAM_OPS__API_TOKEN_FILE/);
  });

  it('builds the nested input object from the variable names', () => {
    assert.deepEqual(configFromEnv({ STARSTREAM_STORE__QDRANT__TIMEOUT_MS: '7', STARSTREAM_STORE__KIND: 'qdrant', OTHER: 'x' }), {
      store: { qdrant: { timeoutMs: 7 }, kind: 'qdrant' },
    });
  });
});

describe('loadConfig precedence', () => {
  const configFile = (): string =>
    file('precedence.json', JSON.stringify({ store: { dimension: 8, userHistoryLength: 7 }, ranking: { topK: 3 } }));

  it('file < env < overrides, field by field (objects are merged, not replaced)', () => {
    const path = configFile();
    const env = { STARSTREAM_STORE__DIMENSION: '16', STARSTREAM_CANDIDATES__MAX_CANDIDATES: '40' };
    const fileOnly = loadConfig({ file: path });
    assert.equal(fileOnly.store.dimension, 8);
    const withEnv = loadConfig({ file: path, env });
    assert.equal(withEnv.store.dimension, 16);
    assert.equal(withEnv.store.userHistoryLength, 7, 'the file value of a sibling field survives');
    const all = loadConfig({ file: path, env, overrides: { store: { dimension: 24 } } });
    assert.equal(all.store.dimension, 24);
    assert.equal(all.store.userHistoryLength, 7);
    assert.equal(all.candidates.maxCandidates, 40);
    assert.equal(all.ranking.topK, 3);
    assert.equal(all.store.cooccurrenceWindow, 5, 'untouched fields keep their defaults');
  });

  it('rejects an unreadable or non-object file as "(file)"', () => {
    assert.equal(configError(() => loadConfig({ file: join(dir, 'nope.json') })).field, '(file)');
    assert.equal(configError(() => loadConfig({ file: file('array.json', '[1]') })).field, '(file)');
    assert.equal(configError(() => loadConfig({ file: file('bad.json', '{ not json') })).field, '(file)');
  });
});

describe('loadConfig validation', () => {
  const cases: { name: string; sources: Parameters<typeof loadConfig>[0]; field: string }[] = [
    { name: 'a negative dimension (override)', sources: { overrides: { store: { dimension: -1 } } }, field: 'store.dimension' },
    { name: 'a negative dimension (env)', sources: { env: { STARSTREAM_STORE__DIMENSION: '-1' } }, field: 'store.dimension' },
    { name: 'a non-integer', sources: { overrides: { ranking: { topK: 2.5 } } }, field: 'ranking.topK' },
    { name: 'a string where a number is due', sources: { env: { STARSTREAM_OPS__PORT: 'eighty' } }, field: 'ops.port' },
    { name: 'a port out of range', sources: { overrides: { ops: { port: 70_000 } } }, field: 'ops.port' },
    { name: 'an unknown enum value', sources: { env: { STARSTREAM_EVENT_LOG__KIND: 'rabbitmq' } }, field: 'eventLog.kind' },
    { name: 'an empty broker list', sources: { env: { STARSTREAM_EVENT_LOG__KAFKA__BROKERS: '[]' } }, field: 'eventLog.kafka.brokers' },
    { name: 'an empty broker name', sources: { env: { STARSTREAM_EVENT_LOG__KAFKA__BROKERS: '[""]' } }, field: 'eventLog.kafka.brokers.0' },
    { name: 'a jitter above 1', sources: { overrides: { store: { retry: { jitter: 2 } } } }, field: 'store.retry.jitter' },
    { name: 'a bad URL', sources: { overrides: { store: { qdrant: { url: 'not a url' } } } }, field: 'store.qdrant.url' },
  ];

  it('keeps a numeric-looking env value of a text field as text', () => {
    assert.equal(loadConfig({ env: { STARSTREAM_PIPELINE__GROUP_ID: '2024' } }).pipeline.groupId, '2024');
  });
  for (const c of cases) {
    it(`names the dotted path for ${c.name}`, () => {
      const err = configError(() => loadConfig(c.sources));
      assert.equal(err.field, c.field);
      assert.ok(err.message.includes(c.field), `message "${err.message}" names ${c.field}`);
    });
  }

  it('rejects unknown keys at any level and names the key', () => {
    const nested = configError(() => loadConfig({ overrides: { store: { dimensoin: 3 } } as unknown as ConfigInput }));
    assert.equal(nested.field, 'store');
    assert.match(nested.message, /dimensoin/);
    const root = configError(() => parseConfig({ bogus: true }));
    assert.match(root.message, /bogus/);
    const deep = configError(() => loadConfig({ env: { STARSTREAM_STORE__EMBEDDED__HNSW_MM: '4' } }));
    assert.equal(deep.field, 'store.embedded');
    assert.match(deep.message, /hnswMm/);
  });

  it('keeps the zod error as the cause', () => {
    const err = configError(() => parseConfig({ store: { dimension: 0 } }));
    assert.ok(err.cause instanceof Error);
  });
});

describe('the loaded config is deeply frozen', () => {
  it('freezes every object and array, so nothing can change it after validation', () => {
    const c = loadConfig({ env: { STARSTREAM_EVENT_LOG__KAFKA__BROKERS: '["a:1","b:2"]' } });
    const seen: string[] = [];
    const walk = (value: unknown, path: string): void => {
      if (typeof value !== 'object' || value === null) return;
      assert.ok(Object.isFrozen(value), `${path || '(root)'} is frozen`);
      seen.push(path);
      for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k);
    };
    walk(c, '');
    assert.ok(seen.includes('eventLog.kafka.brokers'));
    assert.ok(seen.includes('store.embedded'));
    assert.throws(() => {
      (c.store as { dimension: number }).dimension = 1;
    }, TypeError);
    assert.throws(() => {
      (c.eventLog.kafka.brokers as string[]).push('c:3');
    }, TypeError);
    assert.equal(c.store.dimension, 32);
  });

  it('does not freeze the caller\'s overrides object', () => {
    const overrides = { store: { dimension: 8 } };
    loadConfig({ overrides });
    assert.ok(!Object.isFrozen(overrides));
    assert.ok(!Object.isFrozen(overrides.store));
  });
});

describe('config errors say where the value came from and what was meant', () => {
  it('an unknown field from env names the variable and the near field with its variable', () => {
    const err = configError(() => loadConfig({ env: { STARSTREAM_STORE__DIMENSON: '3' } }));
    assert.equal(err.field, 'store');
    assert.match(err.message, /unknown field dimenson \(set by STARSTREAM_STORE__DIMENSON\); did you mean dimension \(STARSTREAM_STORE__DIMENSION\)\?/);
  });

  it('an unknown field inside a JSON object variable names that variable', () => {
    const err = configError(() => loadConfig({ env: { STARSTREAM_STORE: '{"dimensoin":3}' } }));
    assert.match(err.message, /set by STARSTREAM_STORE\)/);
    assert.match(err.message, /did you mean dimension/);
  });

  it('an unknown field in a file names the file; no suggestion when nothing is near', () => {
    const path = file('unknown.json', '{"store":{"zzzzzz":1}}');
    const err = configError(() => loadConfig({ file: path }));
    assert.match(err.message, new RegExp(`unknown field zzzzzz \\(in ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)$`));
  });

  it('a wrong type from env names the variable', () => {
    const err = configError(() => loadConfig({ env: { STARSTREAM_OPS__PORT: 'eighty' } }));
    assert.equal(err.field, 'ops.port');
    assert.match(err.message, /set by STARSTREAM_OPS__PORT/);
  });

  it('broken JSON in an env value is reported as broken JSON at its field, naming the variable', () => {
    for (const raw of ['["a:1",', '{"brokers": }']) {
      const err = configError(() => configFromEnv({ STARSTREAM_EVENT_LOG__KAFKA__BROKERS: raw }));
      assert.equal(err.field, 'eventLog.kafka.brokers');
      assert.match(err.message, /is not valid JSON .*set by STARSTREAM_EVENT_LOG__KAFKA__BROKERS/);
    }
    // A bare word is still a value (an enum), not broken JSON.
    assert.equal(loadConfig({ env: { STARSTREAM_EVENT_LOG__KIND: 'kafka' } }).eventLog.kind, 'kafka');
  });
});

describe('STARSTREAM_* variables that are not config', () => {
  it("the launcher's STARSTREAM_FROM_SOURCE is not taken for a config field", () => {
    assert.deepEqual(configFromEnv({ STARSTREAM_FROM_SOURCE: '1' }), {});
    assert.equal(loadConfig({ env: { STARSTREAM_FROM_SOURCE: '1' } }).logLevel, 'info');
  });
});
