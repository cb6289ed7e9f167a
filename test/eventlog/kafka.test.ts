/**
 * The Kafka adapter against a real broker: the contract suite plus Kafka-only behaviour, and unit tests of the
 * config mapping and error classification. The broker comes from KAFKA_BROKERS (scripts/test-services.mjs sets
 * it); run alone without it, this file starts its own local KRaft broker and stops it at the end.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import type { LocalBroker } from '../../scripts/kafka/broker.mjs';
import { topicsCreate } from '../../src/cli/topics.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config, ConfigInput } from '../../src/config/schema.ts';
import { BadInputError, ConfigError, FatalError, TransientError } from '../../src/errors/index.ts';
import { createCodecs } from '../../src/eventlog/codec/avro.ts';
import { confluentFraming, headerFraming, SCHEMA_HEADER } from '../../src/eventlog/codec/framing.ts';
import { toKafkaJsConfig } from '../../src/eventlog/kafka/config.ts';
import { classifyKafkaError } from '../../src/eventlog/kafka/errors.ts';
import { createKafkaEventLog } from '../../src/eventlog/kafka/log.ts';
import type { LogRecord } from '../../src/eventlog/port.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { eventually, uniqueName } from '../helpers.ts';
import { runEventLogContract } from './contract.ts';

let ownBroker: Promise<LocalBroker> | null = null;

function brokers(): Promise<string> {
  const fromEnv = process.env.KAFKA_BROKERS;
  if (fromEnv) return Promise.resolve(fromEnv);
  ownBroker ??= import('../../scripts/kafka/broker.mjs').then((m) => m.startLocalBroker());
  return ownBroker.then((b) => b.brokers);
}

after(async () => {
  if (ownBroker) await (await ownBroker).stop();
});

async function kafkaConfig(kafka: NonNullable<ConfigInput['eventLog']>['kafka'] = {}): Promise<Config> {
  return parseConfig({
    eventLog: {
      kind: 'kafka',
      kafka: {
        brokers: (await brokers()).split(','),
        clientId: uniqueName('test'),
        // Long enough that a member stalled by a loaded machine keeps its partitions: a lost session
        // redelivers uncommitted records, which the exactly-once expectations of the contract would count.
        // Members here leave by stop(), so no test waits for a session to expire.
        sessionTimeoutMs: 30_000,
        heartbeatIntervalMs: 500,
        fetchMaxWaitMs: 100,
        rebalanceTimeoutMs: 60_000,
        redeliveryDelayMs: 20,
        maxRedeliveryDelayMs: 200,
        retry: { retries: 8, initialDelayMs: 100, maxDelayMs: 1_000 },
        ...kafka,
      },
    },
  });
}

runEventLogContract(
  'kafka',
  async () => {
    const log = createKafkaEventLog((await kafkaConfig()).eventLog, silentLogger());
    return { log, cleanup: () => log.close() };
  },
  // Guards against a hang, not speed bounds: group joins on a loaded machine take many times their idle seconds.
  { deadlineMs: 120_000, testTimeoutMs: 600_000 },
);

describe('kafka adapter', { timeout: 600_000 }, () => {
  it('carries the schema header through Kafka; bad records decode to BadInputError with their code', async () => {
    const log = createKafkaEventLog((await kafkaConfig()).eventLog, silentLogger());
    const topic = uniqueName('framing');
    const codecs = createCodecs();
    const framing = headerFraming();
    try {
      await log.ensureTopics([{ name: topic, partitions: 1, replicationFactor: 1 }]);
      const interaction = {
        eventId: 'e1',
        userId: 'u1',
        itemId: 'i1',
        type: 'click' as const,
        value: null,
        timestampMs: 1_700_000_000_000,
        context: {},
      };
      const good = await framing.encode(codecs.interaction, interaction, topic);
      await log.producer().send([
        { topic, key: 'good', value: good.value, headers: good.headers },
        {
          topic,
          key: 'unknown',
          value: good.value,
          headers: { [SCHEMA_HEADER]: 'starstream.v1.Interaction@0000000000000000' },
        },
        { topic, key: 'truncated', value: good.value.subarray(0, 3), headers: good.headers },
        {
          topic,
          key: 'other-type',
          value: good.value,
          headers: { [SCHEMA_HEADER]: 'starstream.v1.Item@1234' },
        },
      ]);
      const got: LogRecord[] = [];
      const consumer = log.consumer({
        groupId: uniqueName('g'),
        topics: [topic],
        fromBeginning: true,
        maxBatchRecords: 10,
      });
      void consumer.run(async (batch) => void got.push(...batch.records));
      await eventually(() => got.length >= 4, 30_000);
      const byKey = new Map(got.map((r) => [r.key?.toString(), r]));
      const decode = (key: string) => {
        const r = byKey.get(key)!;
        return framing.decode(codecs.interaction, r.value, r.headers);
      };
      // avsc returns instances of a generated record class: compare the fields.
      assert.deepEqual({ ...(await decode('good')) }, interaction);
      await assert.rejects(
        decode('unknown'),
        (e: unknown) => e instanceof BadInputError && e.code === 'UNKNOWN_SCHEMA',
      );
      await assert.rejects(
        decode('truncated'),
        (e: unknown) => e instanceof BadInputError && e.code === 'UNDECODABLE',
      );
      await assert.rejects(
        decode('other-type'),
        (e: unknown) => e instanceof BadInputError && e.code === 'UNKNOWN_SCHEMA',
      );
      // Bytes without the Confluent prefix, read by a registry reader: no registry call needed to refuse them.
      const noRegistry = confluentFraming({
        register: () => Promise.reject(new Error('unused')),
        schemaById: () => Promise.reject(new Error('unused')),
      });
      const plain = byKey.get('good')!;
      await assert.rejects(noRegistry.decode(codecs.interaction, plain.value, plain.headers), {
        code: 'UNDECODABLE',
      });
    } finally {
      await log.close();
    }
  });

  it('creates every starstream topic with its config, and a second run changes nothing', async () => {
    const base = await kafkaConfig();
    const config = parseConfig({
      eventLog: {
        kind: 'kafka',
        kafka: { ...base.eventLog.kafka },
        topics: { prefix: `${uniqueName('t')}.`, partitions: 2 },
      },
    });
    const specs = await topicsCreate(config, silentLogger());
    assert.equal(specs.length, 7);
    await topicsCreate(config, silentLogger());

    const admin = new kafkajs.Kafka({
      brokers: [...config.eventLog.kafka.brokers],
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.name) });
      assert.deepEqual(
        topics.map((t) => t.partitions.length),
        specs.map(() => 2),
      );
      const items = specs.find((s) => s.name.endsWith('.items'))!;
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          { type: kafkajs.ConfigResourceTypes.TOPIC, name: items.name, configNames: ['cleanup.policy'] },
        ],
      });
      assert.equal(
        resources[0]?.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue,
        'compact',
      );
    } finally {
      await admin.disconnect();
    }
  });

  it('reports an unreachable broker as a TransientError', async () => {
    const { freePort } = await import('../../scripts/kafka/broker.mjs');
    const config = await kafkaConfig({
      brokers: [`127.0.0.1:${await freePort()}`],
      connectionTimeoutMs: 500,
      retry: { retries: 0, initialDelayMs: 10, maxDelayMs: 10 },
    });
    const log = createKafkaEventLog(config.eventLog, silentLogger());
    try {
      await assert.rejects(
        log.ensureTopics([{ name: 'x', partitions: 1, replicationFactor: 1 }]),
        (e: unknown) => {
          assert.ok(e instanceof TransientError, `not transient: ${String(e)}`);
          assert.match(e.code, /^KAFKA_/);
          return true;
        },
      );
    } finally {
      await log.close();
    }
  });
});

describe('toKafkaJsConfig', () => {
  const settings = (kafka: NonNullable<ConfigInput['eventLog']>['kafka']) =>
    parseConfig({ eventLog: { kafka } }).eventLog.kafka;

  it('maps brokers, timeouts, retries and no TLS/SASL by default', () => {
    const config = toKafkaJsConfig(
      settings({ brokers: ['a:9092', 'b:9092'], clientId: 'c', connectionTimeoutMs: 1234 }),
    );
    assert.deepEqual(config.brokers, ['a:9092', 'b:9092']);
    assert.equal(config.clientId, 'c');
    assert.equal(config.connectionTimeout, 1234);
    assert.equal(config.ssl, false);
    assert.equal(config.sasl, undefined);
    assert.equal(config.retry?.retries, 5);
    assert.equal(typeof config.logCreator, 'function');
  });

  it('maps every SASL mechanism and TLS with a CA and a client certificate', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'starstream-tls-'));
    try {
      for (const name of ['ca', 'cert', 'key'])
        await writeFile(join(dir, `${name}.pem`), `-----${name}-----`);
      for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
        const config = toKafkaJsConfig(
          settings({
            ssl: true,
            sslCaFile: join(dir, 'ca.pem'),
            sslCertFile: join(dir, 'cert.pem'),
            sslKeyFile: join(dir, 'key.pem'),
            sasl: { mechanism, username: 'u', password: 'p' },
          }),
        );
        assert.deepEqual(config.sasl, { mechanism, username: 'u', password: 'p' });
        assert.deepEqual(config.ssl, {
          rejectUnauthorized: true,
          ca: ['-----ca-----'],
          cert: '-----cert-----',
          key: '-----key-----',
        });
      }
      assert.equal(toKafkaJsConfig(settings({ ssl: true })).ssl, true);
      assert.deepEqual(toKafkaJsConfig(settings({ ssl: true, sslRejectUnauthorized: false })).ssl, {
        rejectUnauthorized: false,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses inconsistent TLS settings with a ConfigError naming the field', () => {
    assert.throws(
      () => toKafkaJsConfig(settings({ sslCaFile: '/x.pem' })),
      (e: unknown) => e instanceof ConfigError && e.field === 'eventLog.kafka.sslCaFile',
    );
    assert.throws(
      () => toKafkaJsConfig(settings({ ssl: true, sslCertFile: '/c.pem' })),
      (e: unknown) => e instanceof ConfigError && e.field === 'eventLog.kafka.sslCertFile',
    );
    assert.throws(
      () => toKafkaJsConfig(settings({ ssl: true, sslCaFile: '/does/not/exist.pem' })),
      (e: unknown) => e instanceof ConfigError && e.field === 'eventLog.kafka.sslCaFile',
    );
  });
});

describe('classifyKafkaError', () => {
  type ErrorCtor = new (...args: unknown[]) => Error;
  const k = kafkajs as unknown as Record<string, ErrorCtor>;
  const protocol = (type: string, retriable: boolean) =>
    new k.KafkaJSProtocolError!({ message: type, type, code: 1, retriable });

  it('sorts broker answers into transient, bad input and fatal', () => {
    const cases: [Error, new (...a: never[]) => Error, string][] = [
      [protocol('LEADER_NOT_AVAILABLE', true), TransientError, 'KAFKA_LEADER_NOT_AVAILABLE'],
      [protocol('NOT_ENOUGH_REPLICAS', true), TransientError, 'KAFKA_NOT_ENOUGH_REPLICAS'],
      [protocol('TOPIC_AUTHORIZATION_FAILED', false), FatalError, 'KAFKA_TOPIC_AUTHORIZATION_FAILED'],
      [protocol('SASL_AUTHENTICATION_FAILED', false), FatalError, 'KAFKA_SASL_AUTHENTICATION_FAILED'],
      [protocol('UNSUPPORTED_VERSION', false), FatalError, 'KAFKA_UNSUPPORTED_VERSION'],
      [protocol('MESSAGE_TOO_LARGE', false), BadInputError, 'KAFKA_MESSAGE_TOO_LARGE'],
      [protocol('SOMETHING_NEW', false), FatalError, 'KAFKA_SOMETHING_NEW'],
    ];
    for (const [err, family, code] of cases) {
      const classified = classifyKafkaError(err);
      assert.ok(classified instanceof family, `${code}: ${classified.constructor.name}`);
      assert.equal(classified.code, code);
      assert.equal(classified.cause, err);
    }
  });

  it('sorts client-side failures, looking through exhausted retries', () => {
    const refused = new k.KafkaJSConnectionError!('Connection error: ECONNREFUSED', { code: 'ECONNREFUSED' });
    const tls = new k.KafkaJSConnectionError!('Connection error: self-signed', {
      code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    });
    const exhausted = new k.KafkaJSNumberOfRetriesExceeded!(refused, { retryCount: 5, retryTime: 100 });
    const sasl = new k.KafkaJSSASLAuthenticationError!('SASL PLAIN authentication failed');
    // What a consumer's run loop throws when a broker stayed down through every retry: still worth waiting for.
    const wrappedRefused = new k.KafkaJSNonRetriableError!(exhausted, { cause: refused });
    const wrappedSasl = new k.KafkaJSNonRetriableError!(sasl, { cause: sasl });
    const bare = new k.KafkaJSNonRetriableError!('Invalid topic');
    assert.deepEqual(
      [refused, tls, exhausted, sasl, new Error('boom'), wrappedRefused, wrappedSasl, bare].map((e) => {
        const c = classifyKafkaError(e);
        return [c.family, c.code];
      }),
      [
        ['transient', 'KAFKA_CONNECTION'],
        ['fatal', 'KAFKA_TLS'],
        ['transient', 'KAFKA_CONNECTION'],
        ['fatal', 'KAFKA_AUTH'],
        ['fatal', 'KAFKA_UNEXPECTED'],
        ['transient', 'KAFKA_CONNECTION'],
        ['fatal', 'KAFKA_AUTH'],
        ['fatal', 'KAFKA_ERROR'],
      ],
    );
    const already = new TransientError('X', 'already classified');
    assert.equal(classifyKafkaError(already), already);
  });
});
