/**
 * Nothing lost, at scale and across failures (issue 3's acceptance; `npm run test:slow` only):
 *
 * 1. ≥100k events through two `starstream run` children in one consumer group: they split the partitions and
 *    both make progress on their own; one is SIGKILLed mid-stream and the other takes its partitions over.
 *    At the end every input offset is answered by a recommendation or a dead letter; duplicates are counted,
 *    reported, and must sit right behind the killed instance's last commits (at most one batch per partition).
 * 2. The same no-loss check while the broker is stopped and restarted mid-stream (`broker.restart()`): the
 *    pipeline recovers by itself, without being restarted, and re-processes at most the batches in flight.
 *
 * Sizes: NO_LOSS_EVENTS (default 100000) events per scenario. The first scenario uses KAFKA_BROKERS or a local
 * broker started for the file; the second always starts its own broker, since it restarts it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { generateStream } from '../../../src/data/synthetic.ts';
import { assertAccountedFor, describeAccounting, duplicateRanges, startCollector, type Accounting } from './accounting.ts';
import {
  brokers,
  committedOffsets,
  createTestTopics,
  encodeInteractions,
  anyExited,
  onCleanup,
  groupAssignment,
  pipelineEnv,
  producePaced,
  spawnPipeline,
  stopGracefully,
  startBroker,
  stopOwnBroker,
  testEventLog,
  waitUntil,
  withGarbage,
  type PipelineProcess,
} from './harness.ts';

after(() => stopOwnBroker());

const EVENTS = Number(process.env.NO_LOSS_EVENTS ?? 100_000);
const PARTITIONS = 6;
const MAX_BATCH = 200;
const WORLD = { users: 5_000, items: 5_000, events: EVENTS };
/** Every GARBAGE_EVERY-th input is bytes that are no interaction, so the DLQ is part of the accounting. */
const GARBAGE_EVERY = 1_000;
const GARBAGE = Math.floor(EVENTS / GARBAGE_EVERY);

/**
 * SIGTERM at the end: a clean exit. Exit 0 is the proof that the drain met the shutdown deadline (20 s in
 * `pipelineEnv`; the runner exits 1 otherwise); the wait beyond it only guards against a hang.
 */
async function terminate(child: PipelineProcess): Promise<void> {
  const { status, ms } = await stopGracefully(child, 20_000 + 120_000);
  assert.deepEqual(
    status,
    { code: 0, signal: null },
    `${child.name} after SIGTERM, ${ms} ms:\n${child.output()}`,
  );
}

function committedToText(offsets: ReadonlyMap<number, bigint>): string {
  return JSON.stringify(Object.fromEntries([...offsets].map(([p, o]) => [p, String(o)])));
}

/** Duplicates only right behind `from` (the commits at the failure), at most `window` offsets per partition. */
function assertDuplicatesNear(
  result: Accounting,
  from: ReadonlyMap<number, bigint>,
  partitions: readonly number[],
  window: number,
): void {
  for (const [partition, range] of duplicateRanges(result)) {
    const base = from.get(partition) ?? 0n;
    const where = `partition ${partition}: duplicates at ${range.first}..${range.last} (${range.count}), commit at the failure ${base}`;
    assert.ok(partitions.includes(partition), `${where}: not a partition the failure touched`);
    assert.ok(
      range.first >= base && range.last < base + BigInt(window),
      `${where}: not right behind the commit`,
    );
  }
}

describe('pipeline on Kafka loses nothing', { timeout: 1_200_000 }, () => {
  it(`splits ${EVENTS} events over two instances, survives SIGKILL of one, and accounts for every offset`, async (t) => {
    const env = pipelineEnv({ brokers: await brokers(), partitions: PARTITIONS, maxBatchRecords: MAX_BATCH });
    const setup = await createTestTopics(t, env);
    const { brokerList, topics } = setup;
    const groupId = setup.config.pipeline.groupId;
    const collector = await startCollector(t, {
      brokers: brokerList,
      topics,
      codecs: setup.codecs,
      framing: setup.framing,
    });
    const clientId = setup.config.eventLog.kafka.clientId;
    const a = spawnPipeline(t, 'instance a', {
      ...env,
      STARSTREAM_EVENT_LOG__KAFKA__CLIENT_ID: `${clientId}-a`,
    });
    const b = spawnPipeline(t, 'instance b', {
      ...env,
      STARSTREAM_EVENT_LOG__KAFKA__CLIENT_ID: `${clientId}-b`,
    });
    const logs = (): string => `--- a:\n${a.output()}\n--- b:\n${b.output()}`;

    // Both instances in the group, each with half of the partitions.
    const bothAlive = anyExited(a, b);
    const split = await waitUntil(
      async () => {
        const owners = await groupAssignment(brokerList, groupId, topics.interactions);
        return owners?.size === 2 && [...owners.values()].every((p) => p.length === PARTITIONS / 2)
          ? owners
          : null;
      },
      {
        timeoutMs: 120_000,
        intervalMs: 500,
        failed: bothAlive,
        what: 'both instances to share the partitions',
      },
    );
    const ofA = split.get(`${clientId}-a`) ?? [];
    const ofB = split.get(`${clientId}-b`) ?? [];
    assert.equal(ofA.length + ofB.length, PARTITIONS, 'both instances hold partitions');
    t.diagnostic(`assignment: a ${JSON.stringify(ofA)}, b ${JSON.stringify(ofB)}`);

    const log = testEventLog(t, setup);
    const producer = producePaced(
      log,
      withGarbage(encodeInteractions(setup, generateStream({ ...WORLD, seed: 31 })), GARBAGE_EVERY),
      {
        ratePerSec: 2_500,
        chunk: 250,
      },
    );
    onCleanup(t, () => producer.stop());

    // Both make progress on their own partitions (commits follow acknowledged outputs), under the same split.
    const progressed = (committed: ReadonlyMap<number, bigint>, partitions: readonly number[]): boolean =>
      partitions.some((p) => (committed.get(p) ?? -1n) > 0n);
    await waitUntil(
      async () => {
        const committed = await committedOffsets(brokerList, groupId, topics.interactions);
        return (
          progressed(committed, ofA) && progressed(committed, ofB) && collector.outputRecords >= EVENTS / 5
        );
      },
      { timeoutMs: 300_000, intervalMs: 500, failed: bothAlive, what: 'progress of both instances' },
    );
    const stillSplit = await groupAssignment(brokerList, groupId, topics.interactions);
    assert.deepEqual(stillSplit?.get(`${clientId}-a`), ofA, 'the split changed while checking progress');

    // SIGKILL a mid-stream: no drain, no commit, no leaving the group. Its commits are final from here on,
    // until b is given its partitions (after the session timeout).
    const killedAt = collector.outputRecords;
    a.signal('SIGKILL');
    await a.exited;
    const atKill = await committedOffsets(brokerList, groupId, topics.interactions);
    t.diagnostic(
      `SIGKILL a after ${killedAt} outputs, ${producer.sent}/${EVENTS} sent; commits ${committedToText(atKill)}`,
    );
    assert.ok(killedAt < EVENTS, 'the stream was over before the kill');

    await waitUntil(
      async () => {
        const owners = await groupAssignment(brokerList, groupId, topics.interactions);
        return owners?.size === 1 && owners.get(`${clientId}-b`)?.length === PARTITIONS;
      },
      { timeoutMs: 120_000, intervalMs: 500, failed: anyExited(b), what: 'b to take over every partition' },
    );

    assert.equal(await producer.done, EVENTS);
    const result = await collector.waitForAccounting(EVENTS, {
      timeoutMs: 900_000,
      stallMs: 120_000,
      diagnostics: logs,
      failed: anyExited(b),
    });
    t.diagnostic(describeAccounting(result));
    assertAccountedFor(result, {
      inputs: EVENTS,
      deadLettered: GARBAGE,
      deadLetterCodes: ['UNDECODABLE'],
      maxExtraAnswers: MAX_BATCH * ofA.length,
    });
    assertDuplicatesNear(result, atKill, ofA, MAX_BATCH);
    t.diagnostic(
      `duplicates: ${result.extraAnswers} (bound ${MAX_BATCH * ofA.length}), ranges ${JSON.stringify([...duplicateRanges(result)].map(([p, r]) => [p, String(r.first), String(r.last), r.count]))}`,
    );
    await terminate(b);
  });

  it(
    `recovers by itself when the broker is stopped and restarted mid-stream (${EVENTS} events)`,
    async (t) => {
      const broker = await startBroker();
      onCleanup(t, () => broker.stop());
      const env = pipelineEnv({
        brokers: broker.brokers,
        partitions: PARTITIONS,
        maxBatchRecords: MAX_BATCH,
      });
      const setup = await createTestTopics(t, env);
      const { brokerList, topics } = setup;
      const groupId = setup.config.pipeline.groupId;
      const collector = await startCollector(t, {
        brokers: brokerList,
        topics,
        codecs: setup.codecs,
        framing: setup.framing,
      });

      // The input is all on the broker before the restart: a producer retrying across it could append a record
      // twice, and this test is about the pipeline, not the producer in front of it.
      const log = testEventLog(t, setup);
      const producer = producePaced(
        log,
        withGarbage(encodeInteractions(setup, generateStream({ ...WORLD, seed: 32 })), GARBAGE_EVERY),
        {
          ratePerSec: 0,
          chunk: 1_000,
        },
      );
      assert.equal(await producer.done, EVENTS);
      await log.close();

      const child = spawnPipeline(t, 'pipeline', env);
      await waitUntil(() => collector.outputRecords >= EVENTS / 4, {
        timeoutMs: 600_000,
        failed: anyExited(child),
        what: 'a quarter of the outputs',
      });
      const before = await committedOffsets(brokerList, groupId, topics.interactions);
      const outputsBefore = collector.outputRecords;
      const restartStarted = Date.now();
      await broker.restart();
      t.diagnostic(
        `broker restarted in ${Date.now() - restartStarted} ms after ${outputsBefore} outputs; commits before ${committedToText(before)}`,
      );

      // Recovery: new outputs arrive without anyone touching the pipeline, and it is still the same process.
      await waitUntil(() => collector.outputRecords > outputsBefore + MAX_BATCH, {
        timeoutMs: 300_000,
        failed: anyExited(child),
        what: 'new outputs after the broker restart',
      });
      t.diagnostic(`first outputs after the restart ${Date.now() - restartStarted} ms after it began`);

      const result = await collector.waitForAccounting(EVENTS, {
        timeoutMs: 900_000,
        stallMs: 120_000,
        diagnostics: () => child.output(),
        failed: anyExited(child),
      });
      t.diagnostic(describeAccounting(result));
      assertAccountedFor(result, {
        inputs: EVENTS,
        deadLettered: GARBAGE,
        deadLetterCodes: ['UNDECODABLE'],
        maxExtraAnswers: MAX_BATCH * PARTITIONS,
      });
      // The commits read just before the restart may trail the real ones by what was processed while the broker
      // shut down: a window of a few batches per partition.
      assertDuplicatesNear(result, before, [...Array(PARTITIONS).keys()], MAX_BATCH * 4);
      t.diagnostic(
        `duplicates: ${result.extraAnswers}, ranges ${JSON.stringify([...duplicateRanges(result)].map(([p, r]) => [p, String(r.first), String(r.last), r.count]))}`,
      );
      await terminate(child);
    },
  );
});
