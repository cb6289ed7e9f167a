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
 * - `starstream run` as a child process, while records keep arriving: SIGTERM makes it drain, commit and exit
 *   0 (the runner exits 1 when its drain overruns the configured deadline); a restarted child continues from
 *   the committed offsets, reprocessing at most the batches in flight.
 *
 * The broker comes from KAFKA_BROKERS (`npm test` sets it); run alone, the file starts a local broker.
 * Every test has its own topic prefix and consumer group; topics, clients and children are cleaned up by hooks
 * registered when they are created; waits poll with deadlines. No assertion depends on how fast the machine
 * is: the deadlines are generous guards against a hang (a loaded 2-core machine runs all of this several times
 * slower), and no outcome depends on which of two processes gets ahead.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { NO_MALFORMED, produceInteractions } from '../../../src/cli/produce.ts';
import type { Interaction } from '../../../src/domain/events.ts';
import { generateStream } from '../../../src/data/synthetic.ts';
import { SCHEMA_HEADER } from '../../../src/eventlog/codec/framing.ts';
import type { OutgoingRecord } from '../../../src/eventlog/port.ts';
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
  RepeatCauses,
  repeatCauseLogger,
  spawnPipeline,
  stopGracefully,
  stopOwnBroker,
  testEventLog,
  waitUntil,
  type TestTopics,
} from './harness.ts';

after(() => stopOwnBroker());

const PARTITIONS = 3;

/**
 * The pipeline in this process (`buildPipeline`, as `starstream run` wires it), stopped when `t` ends. Its log
 * only feeds the returned counts of group joins and redeliveries, which bound the repeats a test may see.
 */
async function startInProcess(t: TestContext, setup: TestTopics): Promise<RepeatCauses> {
  const causes = new RepeatCauses(setup.config.pipeline.groupId);
  const pipeline = await buildPipeline(setup.config, { logger: repeatCauseLogger(causes) });
  onCleanup(t, async () => {
    await pipeline.runner.stop();
    await pipeline.log.close();
    await pipeline.engine.store.close();
  });
  await pipeline.runner.start();
  return causes;
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

/** Guards against a stuck pipeline, never a speed requirement: far beyond what a loaded machine needs. */
const WAIT = { timeoutMs: 300_000, stallMs: 120_000 } as const;

describe('pipeline on Kafka, end to end', { timeout: 1_200_000 }, () => {
  it('recommends for every interaction, keyed by user, with the triggering event id; bad records go to the DLQ and the stream flows on', async (t) => {
    const env = pipelineEnv({ brokers: await brokers(), partitions: PARTITIONS, maxBatchRecords: 100 });
    const setup = await createTestTopics(t, env);
    const collector = await collect(t, setup, true);
    const causes = await startInProcess(t, setup);

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
    await collector.waitForAccounting(200, WAIT);
    await producer.send(bad);
    await producer.send(good.slice(200));
    await producer.close();

    const total = good.length + bad.length;
    const result = await collector.waitForAccounting(total, WAIT);
    t.diagnostic(`${describeAccounting(result)}; ${causes.describe()}`);
    assert.deepEqual(collector.problems, []);
    assert.equal(result.inputs, total);
    assert.equal(result.recommended, good.length, describeAccounting(result));
    assert.equal(result.deadLettered, bad.length, describeAccounting(result));
    // None unless the group rebalanced or a batch failed (a loaded machine can stall a consumer that long).
    const repeatsAllowed = causes.allowedRepeats(100, PARTITIONS);
    assert.ok(result.extraAnswers <= repeatsAllowed, `${describeAccounting(result)}; ${causes.describe()}`);
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
      assert.ok(letters && letters.length >= 1 && letters.length <= 1 + repeatsAllowed, `bad record ${i}: ${letters?.length ?? 0} dead letters`);
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
    const causes = await startInProcess(t, setup);
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
    const result = await collector.waitForAccounting(total, WAIT);
    t.diagnostic(`${describeAccounting(result)}; ${causes.describe()}`);
    const expectedBad = Math.floor(total / 97) + Math.floor(total / 101);
    // Exactly one answer each, unless the group rebalanced or a batch failed.
    assertAccountedFor(result, { inputs: total, deadLettered: expectedBad, maxExtraAnswers: causes.allowedRepeats(250, PARTITIONS) });
    assert.deepEqual(result.deadLetterCodes, {
      UNDECODABLE: Math.floor(total / 97),
      NON_FINITE_VALUE: Math.floor(total / 101),
    });
    assert.equal(collector.outputRecords, total + result.extraAnswers, 'one output record per answer');
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
    const causes = await startInProcess(t, setup);
    const result = await collector.waitForAccounting(total, WAIT);
    t.diagnostic(`${describeAccounting(result)}; ${causes.describe()}`);
    // Accounted for at all means no batch was refused for good. Repeats only where the group rebalanced or a
    // batch failed: on a loaded machine a consumer busy with a 500-record batch was seen to lose its session.
    assert.equal(result.recommended, total);
    assert.ok(result.extraAnswers <= causes.allowedRepeats(500, 1), `${describeAccounting(result)}; ${causes.describe()}`);
  });

  it('starstream run drains, commits and exits 0 on SIGTERM while records arrive; a restart reprocesses at most the batches in flight', async (t) => {
    const maxBatchRecords = 100;
    // Exit 0 is the proof that the drain finished within this deadline (the runner exits 1 otherwise); it is
    // set well above a drain's usual second so that a loaded machine does not turn it into a speed test.
    const deadlineMs = 60_000;
    const env = pipelineEnv({
      brokers: await brokers(),
      partitions: PARTITIONS,
      maxBatchRecords,
      shutdownDeadlineMs: deadlineMs,
      // Info level, so that the children's group joins and redeliveries are seen (`causes`).
      extra: { STARSTREAM_LOG_LEVEL: 'info' },
    });
    const setup = await createTestTopics(t, env);
    const collector = await collect(t, setup, false);
    const groupId = setup.config.pipeline.groupId;

    // The producer starts first and runs until the first instance has exited, so records are arriving when
    // SIGTERM comes by construction, however fast the pipeline or the machine is (a fixed total at a fixed
    // rate was all sent before the first outputs on a loaded machine: "not under load"). The stream is lazy
    // and far longer than the test runs; what was sent when the producer stops is the total.
    const log = testEventLog(t, setup);
    const producer = producePaced(
      log,
      encodeInteractions(setup, generateStream({ users: 300, items: 1_500, events: 1_000_000, seed: 23 })),
      { ratePerSec: 500, chunk: 50 },
    );
    onCleanup(t, () => producer.stop());
    const first = spawnPipeline(t, 'starstream run #1', env);
    await waitUntil(() => collector.outputRecords >= 600, {
      timeoutMs: WAIT.timeoutMs,
      failed: anyExited(first),
      what: 'the first outputs of starstream run #1',
    });
    const sentAtSignal = producer.sent;
    const outputsAtSignal = collector.outputRecords;
    const { status, ms: exitMs } = await stopGracefully(first, deadlineMs + WAIT.stallMs);
    producer.stop();
    const total = await producer.done;
    t.diagnostic(
      `SIGTERM with ${sentAtSignal} sent and ${outputsAtSignal} outputs seen: exit ${JSON.stringify(status)} after ${exitMs} ms; ${total} sent in all; #1: ${first.causes.describe()}`,
    );
    assert.deepEqual(status, { code: 0, signal: null }, first.output());

    // What the drained instance committed: everything below the committed offset was answered, and almost
    // nothing above it (only a batch whose outputs were acknowledged but whose commit did not make it).
    const committed = await committedOffsets(setup.brokerList, groupId, setup.topics.interactions);
    await waitUntil(() => collector.caughtUp(), { timeoutMs: WAIT.timeoutMs, what: 'the collector to catch up' });
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
    const result = await collector.waitForAccounting(total, {
      ...WAIT,
      diagnostics: () => second.output(),
      failed: anyExited(second),
    });
    t.diagnostic(`${describeAccounting(result)}; #2: ${second.causes.describe()}`);
    // An instance that rebalanced or failed a batch while it ran repeated those batches itself (a loaded
    // machine can stall a consumer past its session timeout); that is at-least-once, bounded by what happened.
    const ownRepeats =
      first.causes.allowedRepeats(maxBatchRecords, PARTITIONS) + second.causes.allowedRepeats(maxBatchRecords, PARTITIONS);
    // At most the batches in flight at the signal come again.
    assertAccountedFor(result, { maxExtraAnswers: maxBatchRecords * PARTITIONS + ownRepeats });
    // The restart reprocessed only what was beyond the commit.
    const belowCommit = result.duplicates.filter((d) => BigInt(d.offset) < (committed.get(d.partition) ?? -1n));
    assert.ok(
      belowCommit.length <= ownRepeats,
      `duplicates below the commit at ${belowCommit.slice(0, 5).map((d) => position(d.partition, d.offset)).join(', ')}; #1: ${first.causes.describe()}, #2: ${second.causes.describe()}`,
    );
    const stopped = await stopGracefully(second, deadlineMs + WAIT.stallMs);
    assert.deepEqual(
      stopped.status,
      { code: 0, signal: null },
      `after ${stopped.ms} ms:\n${second.output()}`,
    );
  });
});
