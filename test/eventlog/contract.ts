/**
 * The event log contract: the semantics `src/eventlog/port.ts` promises, run against every adapter.
 * Each test makes its own log, topic and group (random names) and cleans up in `finally`, whatever failed.
 *
 *   runEventLogContract('embedded', async () => ({ log, cleanup }));
 *
 * Waiting is always polling with a deadline (`eventually`); `deadlineMs` scales the deadlines for adapters
 * whose group joins take seconds (Kafka).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FatalError, TransientError } from '../../src/errors/index.ts';
import type {
  BatchHandler,
  ConsumedBatch,
  ConsumerOptions,
  EventConsumer,
  EventLog,
  EventProducer,
  LogRecord,
  OutgoingRecord,
} from '../../src/eventlog/port.ts';
import { eventually, uniqueName } from '../helpers.ts';

export interface LogUnderTest {
  readonly log: EventLog;
  cleanup(): Promise<void>;
}

export interface ContractOptions {
  /** Deadline of each wait for records or offsets, ms. */
  readonly deadlineMs?: number;
  /** Per-test timeout, ms. */
  readonly testTimeoutMs?: number;
}

const PARTITIONS = 3;

/** One test's world: a fresh log, topic and group, and everything to stop when the test ends. */
class Scope {
  readonly topic = uniqueName('contract');
  readonly groupId = uniqueName('group');
  private readonly consumers: EventConsumer[] = [];
  private readonly producers: EventProducer[] = [];

  constructor(
    readonly log: EventLog,
    readonly deadlineMs: number,
  ) {}

  async createTopic(partitions = PARTITIONS): Promise<void> {
    await this.log.ensureTopics([{ name: this.topic, partitions, replicationFactor: 1 }]);
    // Kafka can report a new topic's leaders before the broker serves its partitions; a produce then fails (on
    // a loaded machine: "does not host this topic-partition", or an idempotent producer's out-of-order
    // sequence after its retry). The log's offsets for every partition say that it is served.
    const probe = this.log.consumer({ groupId: uniqueName('ready'), topics: [this.topic], fromBeginning: true, maxBatchRecords: 1 });
    try {
      await this.wait(async () => (await probe.lag()).length === partitions);
    } finally {
      await probe.stop();
    }
  }

  producer(): EventProducer {
    const producer = this.log.producer();
    this.producers.push(producer);
    return producer;
  }

  consumer(overrides: Partial<ConsumerOptions> = {}): EventConsumer {
    const consumer = this.log.consumer({
      groupId: this.groupId,
      topics: [this.topic],
      fromBeginning: true,
      maxBatchRecords: 10,
      ...overrides,
    });
    this.consumers.push(consumer);
    return consumer;
  }

  /** Runs a consumer that records every batch; `handler` may fail or delay a batch. */
  collect(consumer: EventConsumer, handler?: BatchHandler): Collected {
    const collected = new Collected();
    collected.done = consumer.run(async (batch) => {
      if (handler) await handler(batch);
      collected.add(batch);
    });
    // A failing run() is asserted by the tests that expect it; elsewhere it must not go unhandled.
    collected.done.catch(() => undefined);
    return collected;
  }

  wait<T>(check: () => T | Promise<T>): Promise<T> {
    return eventually(check, this.deadlineMs, 25);
  }

  async dispose(): Promise<void> {
    await Promise.allSettled(this.consumers.map((c) => c.stop()));
    await Promise.allSettled(this.producers.map((p) => p.close()));
  }
}

class Collected {
  readonly batches: ConsumedBatch[] = [];
  readonly records: LogRecord[] = [];
  done: Promise<void> = Promise.resolve();

  add(batch: ConsumedBatch): void {
    this.batches.push(batch);
    this.records.push(...batch.records);
  }

  values(): string[] {
    return this.records.map((r) => r.value.toString());
  }
}

function records(topic: string, key: string | null, values: readonly string[]): OutgoingRecord[] {
  return values.map((value) => ({ topic, key, value: Buffer.from(value) }));
}

function range(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

async function totalLag(consumer: EventConsumer): Promise<number> {
  return (await consumer.lag()).reduce((sum, p) => sum + p.lag, 0);
}

export function runEventLogContract(
  name: string,
  makeLog: () => Promise<LogUnderTest>,
  options: ContractOptions = {},
): void {
  const deadlineMs = options.deadlineMs ?? 10_000;
  const timeout = options.testTimeoutMs ?? Math.max(30_000, deadlineMs * 4);

  async function inScope(body: (scope: Scope) => Promise<void>): Promise<void> {
    const { log, cleanup } = await makeLog();
    const scope = new Scope(log, deadlineMs);
    try {
      await body(scope);
    } finally {
      await scope.dispose();
      await cleanup();
    }
  }

  describe(`event log contract: ${name}`, { timeout }, () => {
    it('delivers the records of a key in order, all from one partition', () =>
      inScope(async (s) => {
        await s.createTopic();
        const producer = s.producer();
        const keys = ['user-a', 'user-b', 'user-c', 'user-d'];
        for (let round = 0; round < 5; round++) {
          await producer.send(
            keys.flatMap((key) =>
              records(s.topic, key, range(`${key}:`, 10).slice(round * 2, round * 2 + 2)),
            ),
          );
        }
        const got = s.collect(s.consumer());
        // Every record, not a count: a group that rebalanced (a consumer stalled past its session on a loaded
        // machine) hands uncommitted records over again, and repeats would fill a count early.
        await s.wait(() => new Set(got.values()).size >= 40);

        for (const key of keys) {
          const ofKey = got.records.filter((r) => r.key?.toString() === key);
          // In order, at least once: each record is the next one, or a step back to where a redelivery resumed
          // (the last commit), never a step over one.
          const seq = ofKey.map((r) => Number(r.value.toString().slice(key.length + 1)));
          for (let i = 1; i < seq.length; i++) {
            assert.ok(seq[i]! === seq[i - 1]! + 1 || seq[i]! <= seq[i - 1]!, `order of ${key}: ${seq.join(' ')}`);
          }
          assert.deepEqual([...new Set(seq)].sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i), `all of ${key}`);
          assert.equal(seq[0], 0, `${key} starts at its first record`);
          assert.equal(new Set(ofKey.map((r) => r.partition)).size, 1, `${key} spans partitions`);
        }
        for (const batch of got.batches) {
          assert.ok(batch.records.length <= 10, 'batch larger than maxBatchRecords');
          assert.ok(batch.records.every((r) => r.partition === batch.partition && r.topic === s.topic));
          const offsets = batch.records.map((r) => BigInt(r.offset));
          assert.ok(
            offsets.every((o, i) => i === 0 || o > offsets[i - 1]!),
            'offsets not increasing in a batch',
          );
        }
      }));

    it('round-trips keys, null keys, headers and values', () =>
      inScope(async (s) => {
        await s.createTopic();
        const before = Date.now();
        await s.producer().send([
          {
            topic: s.topic,
            key: 'text-key',
            value: Buffer.from('one'),
            headers: { h1: 'v1', h2: Buffer.from([0, 255]) },
          },
          { topic: s.topic, key: Buffer.from([1, 2, 3]), value: Buffer.from([0, 1, 2, 250]) },
          { topic: s.topic, key: null, value: Buffer.from('no key'), headers: {} },
        ]);
        const got = s.collect(s.consumer());
        await s.wait(() => got.records.length >= 3);

        const byValue = new Map(got.records.map((r) => [r.value.toString('hex'), r]));
        const one = byValue.get(Buffer.from('one').toString('hex'));
        assert.ok(one, 'record with headers missing');
        assert.deepEqual(one.key, Buffer.from('text-key'));
        assert.deepEqual(one.headers.h1, Buffer.from('v1'));
        assert.deepEqual(one.headers.h2, Buffer.from([0, 255]));
        const binary = byValue.get(Buffer.from([0, 1, 2, 250]).toString('hex'));
        assert.deepEqual(binary?.key, Buffer.from([1, 2, 3]));
        assert.deepEqual(Object.keys(binary?.headers ?? { missing: 1 }), []);
        const noKey = byValue.get(Buffer.from('no key').toString('hex'));
        assert.equal(noKey?.key, null);
        for (const r of got.records) {
          assert.match(r.offset, /^(0|[1-9][0-9]*)$/);
          assert.ok(r.timestampMs >= before - 5_000 && r.timestampMs <= Date.now() + 5_000, 'timestamp');
        }
      }));

    it('redelivers a failed batch from the last committed offset, after which nothing is lost', () =>
      inScope(async (s) => {
        await s.createTopic(1);
        const values = range('r', 30);
        await s.producer().send(records(s.topic, 'k', values));
        let failed: ConsumedBatch | undefined;
        const attempts: string[] = [];
        const got = s.collect(s.consumer({ maxBatchRecords: 5 }), async (batch) => {
          attempts.push(batch.records[0]!.offset);
          if (!failed && batch.records.some((r) => r.value.toString() === 'r12')) {
            failed = batch;
            throw new TransientError('TEST_FAILURE', 'downstream said no');
          }
        });
        await s.wait(() => got.records.length >= 30);

        assert.ok(failed, 'the failing batch was never seen');
        const firstOffset = failed.records[0]!.offset;
        assert.ok(
          attempts.filter((o) => o === firstOffset).length >= 2,
          'failed batch not retried from its first offset',
        );
        assert.deepEqual(got.values(), values, 'records lost, duplicated after commit, or reordered');
      }));

    it('commits only after the handler resolves: a rejected batch is read again by the next consumer', () =>
      inScope(async (s) => {
        await s.createTopic();
        await s.producer().send(records(s.topic, 'k', range('x', 6)));
        const first = s.consumer();
        let calls = 0;
        s.collect(first, async () => {
          calls++;
          throw new TransientError('TEST_FAILURE', 'never succeeds');
        });
        await s.wait(() => calls >= 1);
        await first.stop();

        const second = s.collect(s.consumer());
        await s.wait(() => second.records.length >= 6);
        assert.deepEqual(second.values(), range('x', 6));
      }));

    it('a new consumer of the group resumes after the last committed batch and reprocesses nothing', () =>
      inScope(async (s) => {
        await s.createTopic();
        const producer = s.producer();
        await producer.send(records(s.topic, null, range('old', 20)));
        const first = s.consumer();
        const got1 = s.collect(first);
        await s.wait(() => got1.records.length >= 20);
        await first.stop();
        assert.equal(got1.records.length, 20);

        await producer.send(records(s.topic, null, range('new', 10)));
        const got2 = s.collect(s.consumer());
        await s.wait(() => got2.records.length >= 10);
        assert.deepEqual(got2.values().sort(), range('new', 10).sort());
        const observer = s.consumer();
        await s.wait(async () => (await totalLag(observer)) === 0);
      }));

    it('fromBeginning: true reads what was there; false starts at the end', () =>
      inScope(async (s) => {
        await s.createTopic();
        const producer = s.producer();
        await producer.send(records(s.topic, null, range('early', 5)));

        const fromStart = s.collect(s.consumer({ groupId: uniqueName('from-start'), fromBeginning: true }));
        const fromEnd = s.collect(s.consumer({ groupId: uniqueName('from-end'), fromBeginning: false }));
        // The end is where the group starts, which Kafka fixes only once the member has joined: probe until
        // the late group has seen a probe on every partition. Records of a partition arrive in order, so by
        // then it would have seen any early record it was going to read, and it must have seen none.
        // (Keyed probes, so they reach every partition whatever the adapter does with null keys.)
        let probes = 0;
        await s.wait(async () => {
          await producer.send(records(s.topic, `probe-key-${probes}`, [`probe${probes++}`]));
          return new Set(fromEnd.records.map((r) => r.partition)).size === PARTITIONS;
        });
        // Wait for the early records themselves, not for a count: probes keep arriving and would fill a count
        // before the last early record on a busy machine.
        const earlyOf = (c: Collected): string[] => c.values().filter((v) => v.startsWith('early'));
        await s.wait(() => earlyOf(fromStart).length >= 5);

        assert.deepEqual(earlyOf(fromStart).sort(), range('early', 5));
        assert.deepEqual(earlyOf(fromEnd), []);
      }));

    it('pause() stops delivery until resume()', () =>
      inScope(async (s) => {
        await s.createTopic();
        const producer = s.producer();
        const paused = s.consumer();
        const got = s.collect(paused);
        // A second group reads the same records: once it has them all, the paused one had the same chance.
        const witness = s.collect(s.consumer({ groupId: uniqueName('witness') }));
        await producer.send(records(s.topic, null, ['warm-up']));
        await s.wait(() => got.records.length >= 1);

        paused.pause();
        await producer.send(records(s.topic, null, range('p', 10)));
        await s.wait(() => witness.records.length >= 11);
        await s.wait(async () => (await totalLag(paused)) === 10);
        assert.deepEqual(got.values(), ['warm-up']);

        paused.resume();
        await s.wait(() => got.records.length >= 11);
        assert.deepEqual(got.values().slice(1).sort(), range('p', 10).sort());
      }));

    it('stop() is idempotent, waits for the batch in flight and commits it', () =>
      inScope(async (s) => {
        await s.createTopic(1);
        await s.producer().send(records(s.topic, 'k', range('s', 5)));
        const consumer = s.consumer();
        const events: string[] = [];
        let entered = false;
        let release: () => void = () => undefined;
        const held = new Promise<void>((resolve) => (release = resolve));
        s.collect(consumer, async () => {
          entered = true;
          await held;
          events.push('handler-done');
        });
        await s.wait(() => entered);

        const stops = [consumer.stop(), consumer.stop()];
        void Promise.all(stops).then(() => events.push('stopped'));
        for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
        release();
        await Promise.all(stops);
        await consumer.stop();
        assert.deepEqual(events.slice(0, 2), ['handler-done', 'stopped']);

        const next = s.consumer();
        await s.wait(async () => (await totalLag(next)) === 0);
      }));

    it('lag counts what the group has not committed and reaches 0', () =>
      inScope(async (s) => {
        await s.createTopic();
        await s.producer().send(records(s.topic, null, range('l', 30)));
        const consumer = s.consumer();
        await s.wait(async () => (await totalLag(consumer)) === 30);
        const got = s.collect(consumer);
        await s.wait(() => got.records.length >= 30);
        await s.wait(async () => (await totalLag(consumer)) === 0);
      }));

    it('a FatalError from the handler rejects run() and commits nothing', () =>
      inScope(async (s) => {
        await s.createTopic(1);
        await s.producer().send(records(s.topic, 'k', range('f', 3)));
        const consumer = s.consumer();
        const run = consumer.run(async () => {
          throw new FatalError('TEST_FATAL', 'cannot go on');
        });
        await assert.rejects(run, (err: unknown) => err instanceof FatalError && err.code === 'TEST_FATAL');
        await consumer.stop();

        const again = s.collect(s.consumer());
        await s.wait(() => again.records.length >= 3);
        assert.deepEqual(again.values(), range('f', 3));
      }));

    it('health() says whether a consumer fetches: not before run(), yes while running or paused, not after stop() or a FatalError', () =>
      inScope(async (s) => {
        await s.createTopic(1);
        const consumer = s.consumer();
        assert.equal(consumer.health().notFetching, 'not started');
        const got = s.collect(consumer);
        await s.producer().send(records(s.topic, 'k', ['h0']));
        await s.wait(() => got.records.length >= 1);
        assert.equal(consumer.health().notFetching, null);
        consumer.pause();
        assert.equal(consumer.health().notFetching, null, 'a pause was asked for: readiness stays');
        consumer.resume();
        await consumer.stop();
        assert.notEqual(consumer.health().notFetching, null);

        const failing = s.consumer({ groupId: uniqueName('fatal') });
        const run = failing.run(async () => {
          throw new FatalError('TEST_FATAL', 'cannot go on');
        });
        // The embedded log may have dropped h0 (committed by every group that reads the topic): a record of its own.
        await s.producer().send(records(s.topic, 'k', ['h1']));
        await assert.rejects(run);
        assert.equal(failing.health().notFetching, 'failed (TEST_FATAL)');
      }));

    it('startAt starts listed partitions at given offsets, backwards or forwards of the committed ones; past the end fails run()', () =>
      inScope(async (s) => {
        await s.createTopic(2);
        // A group that never commits keeps the records on the embedded log (which drops what every group read).
        s.consumer({ groupId: uniqueName('holder') });
        const producer = s.producer();
        await producer.send(records(s.topic, 'k', range('a', 10)));
        const first = s.consumer();
        const got1 = s.collect(first);
        await s.wait(() => got1.records.length >= 10);
        await first.stop();
        const partition = got1.records[0]!.partition;
        const other = 1 - partition;
        await producer.send(records(s.topic, 'k', range('b', 5)));

        // Backwards of the committed offset (10), for the listed partition only.
        const back = s.consumer({ startAt: { [s.topic]: { [partition]: '4' } } });
        const got2 = s.collect(back);
        await s.wait(() => got2.records.length >= 11);
        await back.stop();
        assert.deepEqual(got2.values(), [...range('a', 10).slice(4), ...range('b', 5)]);
        assert.equal(got2.records[0]!.offset, '4');

        // Forwards: the group had committed 15; start at 12 with nothing before it redelivered. A second
        // consumer's start of another partition at its end (0 records there) is valid and delivers nothing.
        await producer.send(records(s.topic, 'k', range('c', 2)));
        const ahead = s.consumer({ startAt: { [s.topic]: { [partition]: '16', [other]: '0' } } });
        const got3 = s.collect(ahead);
        await s.wait(() => got3.records.length >= 1);
        await ahead.stop();
        assert.deepEqual(got3.values(), ['c1']);

        const beyond = s.consumer({ groupId: uniqueName('beyond'), startAt: { [s.topic]: { [partition]: '1000' } } });
        await assert.rejects(beyond.run(async () => undefined), (err: unknown) => err instanceof FatalError && err.code === 'START_OFFSET_OUT_OF_RANGE');
        await beyond.stop();
      }));

    it('consumers of one group share the work; when one stops the other takes over', () =>
      inScope(async (s) => {
        await s.createTopic(4);
        const producer = s.producer();
        const a = s.consumer();
        const gotA = s.collect(a);
        const gotB = s.collect(s.consumer());
        const keys = range('key', 8);
        await producer.send(keys.flatMap((k) => records(s.topic, k, [`${k}#1`])));
        await s.wait(() => new Set([...gotA.values(), ...gotB.values()]).size >= 8);

        await a.stop();
        await producer.send(keys.flatMap((k) => records(s.topic, k, [`${k}#2`])));
        await s.wait(() => keys.every((k) => gotB.values().includes(`${k}#2`)));
      }));
  });
}
