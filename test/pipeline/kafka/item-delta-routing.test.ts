/**
 * Routed item writes on a real Kafka broker: two pipeline instances (in this process, each with its own Kafka
 * clients, as two `starstream run` processes would have) share one store whose item writes are a racy
 * read-modify-write like Qdrant's (`../racy-store.ts`). With `store.itemWrites = routed` the item deltas go
 * through the item-keyed item-deltas topic, Kafka's group protocol gives each item-deltas partition to one of
 * the two writers, and every item counts exactly the interactions it got: no write overlaps.
 *
 * The broker comes from KAFKA_BROKERS (`npm test` sets it); run alone, the file starts a local broker.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { hotItemCounts, hotItemEvents, sharedRacyStore, startTwoInstances, total } from '../two-instances.ts';
import {
  brokers,
  createTestTopics,
  encodeInteractions,
  groupAssignment,
  onCleanup,
  pipelineEnv,
  stopOwnBroker,
  testEventLog,
  waitUntil,
} from './harness.ts';

after(() => stopOwnBroker());

const EVENTS = 3_000;

/** Waits poll until this deadline: a guard against a hang, generous for a loaded machine, never a speed bound. */
const WAIT_MS = 300_000;

describe('routed item writes on Kafka', { timeout: 1_200_000 }, () => {
  it('two instances, one writer per item: every item counts exactly its events', async (t) => {
    const env = pipelineEnv({
      brokers: await brokers(),
      partitions: 4,
      maxBatchRecords: 100,
      extra: {
        STARSTREAM_STORE__ITEM_WRITES: 'routed',
        STARSTREAM_STORE__DIMENSION: '8',
        STARSTREAM_PIPELINE__RANKING_ENABLED: 'false',
      },
    });
    const setup = await createTestTopics(t, env);
    const store = await sharedRacyStore(setup.config);
    onCleanup(t, () => store.close());
    const { instances, stop } = await startTwoInstances(setup.config, store);
    onCleanup(t, stop);

    // Both groups stable with both members before producing, so no rebalance redelivers a batch mid-run.
    const groupId = setup.config.pipeline.groupId;
    for (const [group, topic] of [
      [groupId, setup.topics.interactions],
      [`${groupId}.item-deltas`, setup.topics.itemDeltas],
    ] as const) {
      await waitUntil(
        async () => {
          const owners = await groupAssignment(setup.brokerList, group, topic);
          return owners !== null && owners.size === 2 && [...owners.values()].every((p) => p.length > 0);
        },
        { timeoutMs: WAIT_MS, what: `group ${group} stable with two members` },
      );
    }

    const { events, perItem } = hotItemEvents(EVENTS, 200, 3);
    const producer = testEventLog(t, setup).producer();
    await producer.send([...encodeInteractions(setup, events)]);
    await producer.close();

    await waitUntil(async () => total(await hotItemCounts(store)) >= EVENTS, {
      timeoutMs: WAIT_MS,
      what: `${EVENTS} interactions counted on the hot items`,
    });
    await waitUntil(
      async () => (await Promise.all(instances.map((p) => p.runner.itemDeltaLag()))).every((n) => n === 0),
      {
        timeoutMs: WAIT_MS,
        what: 'item-delta writers caught up',
      },
    );
    const counts = await hotItemCounts(store);
    const processedBy = instances.map((p) => p.runner.processedRecords);
    t.diagnostic(
      `routed on Kafka: ${total(counts)} of ${EVENTS} counted; interactions processed per instance ${processedBy}; ${store.lostUpdates} item writes lost`,
    );
    assert.ok(
      processedBy.every((n) => n > 0),
      'both instances processed interactions',
    );
    assert.deepEqual(counts, perItem);
    assert.equal(store.lostUpdates, 0);
  });
});
