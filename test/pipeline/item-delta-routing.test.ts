/**
 * Issue 4's concurrency acceptance on the embedded event log: two pipeline instances share one store whose item
 * writes are a racy read-modify-write, as Qdrant's are across processes (`racy-store.ts`).
 *
 * - `store.itemWrites = direct`: both instances apply their own item deltas, so writes to a hot item overlap
 *   and some are lost (the item counts fall short of the events);
 * - `store.itemWrites = routed`: deltas go through the item-keyed item-deltas topic and each item has one
 *   writer, so no write overlaps and every item counts exactly the events it got.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { NO_MALFORMED, produceInteractions } from '../../src/cli/produce.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { eventually, uniqueName } from '../helpers.ts';
import { hotItemCounts, hotItemEvents, sharedRacyStore, startTwoInstances, total } from './two-instances.ts';

const EVENTS = 2_000;

async function runTwoInstances(t: TestContext, itemWrites: 'direct' | 'routed') {
  const config = loadConfig({
    overrides: {
      store: { dimension: 8, itemWrites },
      pipeline: { groupId: uniqueName(`two-${itemWrites}`), maxBatchRecords: 50, rankingEnabled: false },
      eventLog: { topics: { partitions: 4 } },
    },
  });
  const log = createEmbeddedEventLog(config.eventLog, silentLogger());
  t.after(() => log.close());
  const store = await sharedRacyStore(config);
  t.after(() => store.close());
  const { instances, stop } = await startTwoInstances(config, store, log);
  t.after(stop);

  const { events, perItem } = hotItemEvents(EVENTS, 100);
  const [first] = instances;
  await produceInteractions(
    log,
    first!.topics.interactions,
    events,
    first!.engine.codecs,
    first!.framing,
    NO_MALFORMED,
  );
  await eventually(() => instances.reduce((n, p) => n + p.runner.processedRecords, 0) >= EVENTS, 120_000);
  const processedBy = instances.map((p) => p.runner.processedRecords);
  return { store, instances, perItem, processedBy };
}

describe('two pipeline instances sharing one store with racy item writes', { timeout: 600_000 }, () => {
  it('direct item writes lose concurrent updates', async (t) => {
    const { store, perItem, processedBy } = await runTwoInstances(t, 'direct');
    assert.ok(
      processedBy.every((n) => n > 0),
      `both instances processed events: ${processedBy}`,
    );
    // Direct writes are applied before a batch is acknowledged: what is in the store now is final.
    const counts = await hotItemCounts(store);
    t.diagnostic(
      `direct: ${total(counts)} of ${EVENTS} interactions counted, ${store.lostUpdates} item writes lost`,
    );
    assert.ok(store.lostUpdates > 0, 'item writes overlapped');
    assert.ok(total(counts) < total(perItem), 'some item updates were lost');
  });

  it('routed item writes lose none: every item counts exactly its events', async (t) => {
    const { store, instances, perItem, processedBy } = await runTwoInstances(t, 'routed');
    assert.ok(
      processedBy.every((n) => n > 0),
      `both instances processed events: ${processedBy}`,
    );
    // Item state is eventually consistent: wait for the item-delta writers to catch up.
    await eventually(async () => total(await hotItemCounts(store)) >= total(perItem), 120_000);
    await eventually(
      async () => (await Promise.all(instances.map((p) => p.runner.itemDeltaLag()))).every((n) => n === 0),
      120_000,
    );
    const counts = await hotItemCounts(store);
    t.diagnostic(
      `routed: ${total(counts)} of ${EVENTS} interactions counted, ${store.lostUpdates} item writes lost`,
    );
    assert.deepEqual(counts, perItem);
    assert.equal(store.lostUpdates, 0);
    const items = await store.getItems([...perItem.keys()]);
    for (const item of items.values()) {
      assert.ok(item.recentUsers.length > 0, `${item.itemId}: has an audience`);
      assert.ok(
        item.vector.some((x) => x !== 0),
        `${item.itemId}: learned a vector`,
      );
    }
  });
});
