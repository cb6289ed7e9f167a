/**
 * The pipeline on a real Kafka broker (issue 3's acceptance, the parts that fit in `npm test`):
 *
 * - interactions produced to Kafka come out as recommendations on the output topic, keyed by user, with the
 *   triggering event id in a header and in the body;
 * - garbage bytes, a record naming an unknown writer schema and a NaN value land in the DLQ inside the
 *   DeadLetter envelope (original key and bytes) with reason/code/source topic/partition/offset headers,
 *   and the records behind them on the same partition are still processed;
 * - for ~5k events with malformed ones mixed in, every input offset is answered by exactly one
 *   recommendation (matched by event id) or one dead letter (matched by source partition/offset);
 * - `starstream run` as a child process, under load: SIGTERM makes it drain, commit and exit 0 within the
 *   configured deadline; a restarted child continues from the committed offsets, reprocessing at most the
 *   batches in flight.
 *
 * The broker comes from KAFKA_BROKERS (`npm test` sets it); run alone, the file starts a local broker.
 * Every test has its own topic prefix and consumer group; topics, clients and children are cleaned up by hooks
 * registered when they are created; waits poll with deadlines.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { NO_MALFORMED, produceInteractions } from '../../../src/cli/produce.ts';
import type { Interaction } from '../../../src/domain/events.ts';
import { generateStream } from '../../../src/data/synthetic.ts';
import { SCHEMA_HEADER } from '../../../src/eventlog/codec/framing.ts';
import type { OutgoingRecord } from '../../../src/eventlog/port.ts';
import { silentLogger } from '../../../src/logging/logger.ts';
import { buildPipeline } from '../../../src/main.ts';
import { DLQ_HEADERS, EVENT_ID_HEADER } from '../../../src/pipeline/outputs.ts';
import {
  account,
  compareOffsets,
  describeAccounting,
  assertAccountedFor,
  position,
  startCollector,
  type Collector,
} from './accounting.ts';
import {
  brokers,
  committedOffsets,
  createTestTopics,
  encodeInteractions,
  anyExited,
  onCleanup,
  pipelineEnv,
  producePaced,
  spawnPipeline,
  stopGracefully,
  stopOwnBroker,
  testEventLog,
  waitUntil,
  type TestTopics,
} from './harness.ts';

after(() => stopOwnBroker());

const PARTITIONS = 3;

/** The pipeline in this process (`buildPipeline`, as `starstream run` wires it), stopped when `t` ends. */
async function startInProcess(t: TestContext, setup: TestTopics): Promise<void> {
  const pipeline = await buildPipeline(setup.config, { logger: silentLogger() });
  onCleanup(t, async () => {
    await pipeline.runner.stop();
    await pipeline.log.close();
    await pipeline.engine.store.close();
  });
  await pipeline.runner.start();
}

async function collect(t: TestContext, setup: TestTopics, keepRecords: boolean): Promise<Collector> {
  return startCollector(t, {
    brokers: setup.brokerList,
    topics: setup.topics,
    codecs: setup.codecs,
    framing: setup.framing,
    keepRecords,
  });
}

describe('pipeline on Kafka, end to end', { timeout: 120_000 }, () => {
  it('recommends for every interaction, keyed by user, with the triggering event id; bad records go to the DLQ and the stream flows on', async (t) => {
    const env = pipelineEnv({ brokers: await brokers(), partitions: PARTITIONS, maxBatchRecords: 100 });
    const setup = await createTestTopics(t, env);
    const collector = await collect(t, setup, true);
    await startInProcess(t, setup);

    const events = [...generateStream({ users: 40, items: 300, events: 400, seed: 21 })];
    const good = [...encodeInteractions(setup, events)];
    const interactionTopic = setup.topics.interactions;
    // One bad record of each kind, keyed by a user that also has good events after it (same partition).
    const victim = events[200]!;
    const valid = good[200]!;
    const nan: Interaction = { ...victim, eventId: 'bad-nan', value: Number.NaN };
    const bad: OutgoingRecord[] = [
      {
        topic: interactionTopic,
        key: victim.userId,
        value: Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]),
      },
      {
        topic: interactionTopic,
        key: victim.userId,
        value: valid.value,
        headers: { [SCHEMA_HEADER]: 'starstream.v1.Interaction@00000000deadbeef' },
      },
      { ...encodeInteractions(setup, [nan]).next().value! },
    ];
    const expectedCodes = ['UNDECODABLE', 'UNKNOWN_SCHEMA', 'NON_FINITE_VALUE'];
    const log = testEventLog(t, setup);
    const producer = log.producer();
    // The first half warms the store up: the first batch of a cold pipeline has little to recommend from.
    await producer.send(good.slice(0, 200));
    await collector.waitForAccounting(200, { timeoutMs: 60_000, stallMs: 30_000 });
    await producer.send(bad);
    await producer.send(good.slice(200));
    await producer.close();

    const total = good.length + bad.length;
    const result = await collector.waitForAccounting(total, { timeoutMs: 60_000, stallMs: 30_000 });
    t.diagnostic(describeAccounting(result));
    assert.deepEqual(collector.problems, []);
    assert.equal(result.inputs, total);
    assert.equal(result.recommended, good.length, describeAccounting(result));
    assert.equal(result.deadLettered, bad.length, describeAccounting(result));
    assert.equal(result.duplicates.length, 0, describeAccounting(result));
    assert.equal(result.both.length, 0);
    assert.equal(result.strayRecommendations + result.strayDeadLetters, 0);

    // Recommendations: key = user of the triggering event, event id in header and body, one partition per user.
    const partitionOfUser = new Map<string, number>();
    let withItems = 0;
    const warm = new Set(events.slice(200).map((e) => e.eventId));
    for (const input of collector.inputs.values()) {
      if (input.eventId === null || input.eventId === 'bad-nan') continue;
      const [rec] = collector.recommendations.get(input.eventId)!;
      assert.ok(rec?.body, `no recommendation body for ${input.eventId}`);
      assert.equal(rec.key, input.userId);
      assert.equal(rec.body.userId, input.userId);
      assert.equal(rec.eventId, input.eventId, `header ${EVENT_ID_HEADER}`);
      assert.equal(rec.body.eventId, input.eventId);
      assert.ok(rec.body.items.length <= setup.config.ranking.topK);
      for (const item of rec.body.items)
        assert.ok(Number.isFinite(item.score) && item.itemId.startsWith('i'));
      if (warm.has(input.eventId) && rec.body.items.length > 0) withItems++;
      const seenOn = partitionOfUser.get(rec.key!) ?? rec.partition;
      assert.equal(rec.partition, seenOn, `recommendations of ${rec.key} on several partitions`);
      partitionOfUser.set(rec.key!, rec.partition);
    }
    assert.ok(
      withItems >= warm.size * 0.95,
      `only ${withItems}/${warm.size} recommendations on a warm store list items`,
    );

    // Dead letters: original key and bytes inside the envelope, reason/code/source in headers and body.
    const inputs = [...collector.inputs.values()];
    const codes: string[] = [];
    for (const [i, record] of bad.entries()) {
      const input = inputs.find(
        (r) => r.key === victim.userId && r.value?.equals(record.value) && (i !== 1 || r.eventId === null),
      );
      assert.ok(input, `bad record ${i} not found on the input topic`);
      const letters = collector.deadLetters.get(position(input.partition, input.offset));
      assert.equal(letters?.length, 1, `bad record ${i}: ${letters?.length ?? 0} dead letters`);
      const letter = letters[0]!;
      const envelope = letter.envelope!;
      codes.push(letter.code);
      assert.equal(letter.code, expectedCodes[i]);
      assert.ok(letter.reason.length > 0);
      assert.deepEqual(letter.source, {
        topic: interactionTopic,
        partition: input.partition,
        offset: input.offset,
      });
      assert.equal(letter.headers[DLQ_HEADERS.topic], interactionTopic);
      assert.equal(letter.key?.toString(), victim.userId);
      assert.ok(envelope.payload.equals(record.value), `bad record ${i}: payload is not the original bytes`);
      assert.equal(envelope.key?.toString(), victim.userId);
      assert.equal(envelope.code, letter.code);
      assert.equal(envelope.reason, letter.reason);
      assert.equal(envelope.sourceTopic, interactionTopic);
      assert.equal(envelope.sourcePartition, input.partition);
      assert.equal(envelope.sourceOffset, input.offset);
      // The stream flowed on: a later record of the same partition was recommended for.
      const later = inputs.find(
        (r) =>
          r.partition === input.partition &&
          compareOffsets(r.offset, input.offset) > 0 &&
          r.eventId?.startsWith('e'),
      );
      assert.ok(
        later && collector.recommendations.has(later.eventId!),
        `nothing processed after bad record ${i}`,
      );
    }
    assert.deepEqual(codes, expectedCodes);
  });

  it('accounts for every input offset of ~5k events by exactly one recommendation or one dead letter', async (t) => {
    const env = pipelineEnv({ brokers: await brokers(), partitions: PARTITIONS, maxBatchRecords: 250 });
    const setup = await createTestTopics(t, env);
    const collector = await collect(t, setup, false);
    await startInProcess(t, setup);
    const total = 5_000;
    const malformed = { garbageEvery: 97, nonFiniteEvery: 101 };
    const log = testEventLog(t, setup);
    const sent = await produceInteractions(
      log,
      setup.topics.interactions,
      generateStream({ users: 300, items: 1_500, events: total, seed: 22 }),
      setup.codecs,
      setup.framing,
      malformed,
    );
    assert.equal(sent, total);
    const result = await collector.waitForAccounting(total, { timeoutMs: 90_000, stallMs: 30_000 });
    t.diagnostic(describeAccounting(result));
    const expectedBad = Math.floor(total / 97) + Math.floor(total / 101);
    assertAccountedFor(result, { inputs: total, deadLettered: expectedBad, maxExtraAnswers: 0 });
    assert.deepEqual(result.deadLetterCodes, {
      UNDECODABLE: Math.floor(total / 97),
      NON_FINITE_VALUE: Math.floor(total / 101),
    });
    assert.equal(collector.outputRecords, total, 'one output record per input record');
  });

  // A full batch of big recommendations is more than the broker's message.max.bytes (1 MiB) in one request;
  // the adapter must send it in size-bounded slices, or the refused batch would be redelivered forever.
  it("processes a backlog in full batches whose outputs exceed the broker's 1 MiB request limit", async (t) => {
    const env = pipelineEnv({
      brokers: await brokers(),
      partitions: 1,
      maxBatchRecords: 500,
      // 50 items with their evidence make a recommendation of several KiB: 500 of them are well over 1 MiB.
      extra: { STARSTREAM_RANKING__TOP_K: '50' },
    });
    const setup = await createTestTopics(t, env);
    const collector = await collect(t, setup, false);
    const total = 1_200;
    const log = testEventLog(t, setup);
    // The backlog is there before the pipeline starts, so its first fetch hands over full batches.
    await produceInteractions(
      log,
      setup.topics.interactions,
      generateStream({ users: 300, items: 1_500, events: total, seed: 24 }),
      setup.codecs,
      setup.framing,
      NO_MALFORMED,
    );
    await startInProcess(t, setup);
    const result = await collector.waitForAccounting(total, { timeoutMs: 60_000, stallMs: 20_000 });
    t.diagnostic(describeAccounting(result));
    assert.equal(result.recommended, total);
    assert.equal(result.duplicates.length, 0);
  });

  it('starstream run drains, commits and exits 0 on SIGTERM under load; a restart reprocesses at most the batches in flight', async (t) => {
    const maxBatchRecords = 100;
    const deadlineMs = 15_000;
    const env = pipelineEnv({
      brokers: await brokers(),
      partitions: PARTITIONS,
      maxBatchRecords,
      shutdownDeadlineMs: deadlineMs,
    });
    const setup = await createTestTopics(t, env);
    const collector = await collect(t, setup, false);
    const groupId = setup.config.pipeline.groupId;

    const first = spawnPipeline(t, 'starstream run #1', env);
    const total = 6_000;
    const log = testEventLog(t, setup);
    // Faster than the pipeline drains on a small machine, so there is a backlog (load) when SIGTERM comes.
    const producer = producePaced(
      log,
      encodeInteractions(setup, generateStream({ users: 300, items: 1_500, events: total, seed: 23 })),
      { ratePerSec: 1_000, chunk: 100 },
    );
    onCleanup(t, () => producer.stop());
    await waitUntil(() => collector.outputRecords >= 600, {
      timeoutMs: 60_000,
      failed: anyExited(first),
      what: 'the first outputs of starstream run #1',
    });
    const sentAtSignal = producer.sent;
    const { status, ms: exitMs } = await stopGracefully(first, deadlineMs + 30_000);
    t.diagnostic(
      `SIGTERM with ${sentAtSignal}/${total} sent, ${collector.outputRecords} outputs seen: exit ${JSON.stringify(status)} after ${exitMs} ms`,
    );
    assert.deepEqual(status, { code: 0, signal: null }, first.output());
    // The runner's drain is bounded by the deadline (exit 1 otherwise); closing clients and the process exit come
    // after it, hence a little slack.
    assert.ok(exitMs < deadlineMs + 5_000, `exit took ${exitMs} ms (deadline ${deadlineMs} ms)`);
    assert.ok(sentAtSignal < total, 'the producer had finished before SIGTERM: not under load');

    // What the drained instance committed: everything below the committed offset was answered, and almost
    // nothing above it (only a batch whose outputs were acknowledged but whose commit did not make it).
    const committed = await committedOffsets(setup.brokerList, groupId, setup.topics.interactions);
    await waitUntil(() => collector.caughtUp(), { timeoutMs: 30_000, what: 'the collector to catch up' });
    const unanswered = new Set(account(collector).missing);
    const beyondCommit = new Map<number, number>();
    for (const input of collector.inputs.values()) {
      const upTo = committed.get(input.partition) ?? -1n;
      const answered = !unanswered.has(input);
      if (BigInt(input.offset) < upTo) {
        assert.ok(answered, `offset ${position(input.partition, input.offset)} committed but never answered`);
      } else if (answered) {
        beyondCommit.set(input.partition, (beyondCommit.get(input.partition) ?? 0) + 1);
      }
    }
    t.diagnostic(
      `committed ${JSON.stringify(Object.fromEntries([...committed].map(([p, o]) => [p, String(o)])))}, answered beyond the commit ${JSON.stringify(Object.fromEntries(beyondCommit))}`,
    );
    assert.ok(
      [...committed.values()].some((o) => o > 0n),
      'the first instance committed nothing',
    );
    for (const [partition, count] of beyondCommit) {
      assert.ok(
        count <= maxBatchRecords,
        `partition ${partition}: ${count} records answered beyond the commit`,
      );
    }

    const second = spawnPipeline(t, 'starstream run #2', env);
    assert.equal(await producer.done, total);
    const result = await collector.waitForAccounting(total, {
      timeoutMs: 120_000,
      stallMs: 45_000,
      diagnostics: () => second.output(),
      failed: anyExited(second),
    });
    t.diagnostic(describeAccounting(result));
    // At most the batches in flight at the signal come again.
    assertAccountedFor(result, { maxExtraAnswers: maxBatchRecords * PARTITIONS });
    // The restart reprocessed only what was beyond the commit.
    for (const d of result.duplicates) {
      assert.ok(
        BigInt(d.offset) >= (committed.get(d.partition) ?? -1n),
        `duplicate below the commit at ${position(d.partition, d.offset)}`,
      );
    }
    const stopped = await stopGracefully(second, deadlineMs + 30_000);
    assert.deepEqual(
      stopped.status,
      { code: 0, signal: null },
      `after ${stopped.ms} ms:\n${second.output()}`,
    );
  });
});
