/**
 * Rebalance on Qdrant: two pipeline instances, each with its own tiered store (`store/tiered`) over the same
 * Qdrant collections, share one embedded event log (the same consumer groups, so they split the partitions),
 * with routed item writes. Partitions move twice mid-stream: when the second instance joins, and back when it
 * leaves. The first instance then owns again users and items the second one changed meanwhile, while its hot
 * tier still holds its own older copies of them: it must read them again (`ownershipChanged`), or what the
 * second instance learned is lost.
 *
 * Afterwards every user's and every item's `interactionCount` equals its number of events, in Qdrant as a new
 * process reads it: nothing learned lost or doubled.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { NO_MALFORMED, produceInteractions } from '../../src/cli/produce.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import type { EventLog } from '../../src/eventlog/port.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildPipeline, buildStore, type Pipeline } from '../../src/main.ts';
import { eventually, uniqueName } from '../helpers.ts';
import { qdrantForTests, type QdrantServer } from '../store/qdrant-server.ts';
import { collectionPrefix, dropCollections, qdrantSection, stream, tally } from '../store/tiered-world.ts';

const target = await qdrantForTests();
const skip = 'skip' in target ? target.skip : false;
const server = 'skip' in target ? null : target;

const PHASE_EVENTS = 600;
const USERS = 40;
const ITEMS = 25;
/** The three phases' events: one stream of the tiered suites' world, cut into phases of `PHASE_EVENTS`. */
const EVENTS = stream(3 * PHASE_EVENTS, USERS, ITEMS, 'rb');
const phaseEvents = (phase: number): Interaction[] => EVENTS.slice(phase * PHASE_EVENTS, (phase + 1) * PHASE_EVENTS);

function configFor(t: QdrantServer, prefix: string): Config {
  return loadConfig({
    overrides: {
      store: {
        kind: 'qdrant',
        dimension: 8,
        itemWrites: 'routed',
        qdrant: qdrantSection(t, prefix),
      },
      pipeline: { groupId: uniqueName('rebalance'), maxBatchRecords: 50, rankingEnabled: true },
      eventLog: { topics: { partitions: 4 } },
      ranking: { topK: 5 },
      candidates: { fromEmbedding: 10, fromCooccurrence: 10, fromPopular: 10, maxCandidates: 30 },
      evidence: { neighbours: 5 },
    },
  });
}

async function start(config: Config, log: EventLog, name: string): Promise<Pipeline> {
  const kafka = { ...config.eventLog.kafka, clientId: `${config.eventLog.kafka.clientId}-${name}` };
  const pipeline = await buildPipeline({ ...config, eventLog: { ...config.eventLog, kafka } }, { logger: silentLogger(), log });
  await pipeline.runner.start();
  return pipeline;
}

/** Every produced record processed, and every routed item delta applied by the running instances. */
async function settled(running: readonly Pipeline[], processedBefore: number, produced: number): Promise<void> {
  await eventually(() => running.reduce((n, p) => n + p.runner.processedRecords, processedBefore) >= produced, 60_000);
  await eventually(async () => (await Promise.all(running.map((p) => p.runner.itemDeltaLag()))).every((n) => n === 0), 60_000);
}

async function counts(config: Config, users: readonly string[], items: readonly string[]) {
  const store = buildStore(config);
  try {
    await store.init();
    const [u, i] = [await store.getUsers(users), await store.getItems(items)];
    return {
      users: new Map(users.map((id) => [id, u.get(id)?.interactionCount ?? 0])),
      items: new Map(items.map((id) => [id, i.get(id)?.interactionCount ?? 0])),
    };
  } finally {
    await store.close();
  }
}

describe('rebalance on Qdrant with tiered stores', { skip, timeout: 180_000 }, () => {
  it('partitions move mid-stream and back: every user and item counts exactly its events', async (t: TestContext) => {
    const prefix = collectionPrefix('rb');
    t.after(() => dropCollections(server!, prefix));
    const config = configFor(server!, prefix);
    const log = createEmbeddedEventLog(config.eventLog, silentLogger());
    t.after(() => log.close());
    const produce = async (p: Pipeline, events: Interaction[]) =>
      produceInteractions(log, p.topics.interactions, events, p.engine.codecs, p.framing, NO_MALFORMED);
    const stops: (() => Promise<void>)[] = [];
    t.after(async () => {
      for (const stop of stops.reverse()) await stop();
    });
    const stopOf = (p: Pipeline) => async () => {
      await p.runner.stop();
      await p.engine.store.close();
    };

    const a = await start(config, log, 'a');
    stops.push(stopOf(a));
    await produce(a, phaseEvents(0));
    await settled([a], 0, PHASE_EVENTS);

    const b = await start(config, log, 'b');
    const stopB = stopOf(b);
    stops.push(stopB);
    await produce(a, phaseEvents(1));
    await settled([a, b], 0, 2 * PHASE_EVENTS);
    const byB = b.runner.processedRecords;
    await stopB();
    stops.pop();

    await produce(a, phaseEvents(2));
    await settled([a], byB, 3 * PHASE_EVENTS);
    t.diagnostic(`instance b handled ${byB} of the ${PHASE_EVENTS} events of phase 2; a handled ${a.runner.processedRecords} in all`);
    assert.ok(byB > 0 && byB < PHASE_EVENTS, 'the second instance took over some partitions');

    const byUser = tally(EVENTS, (e) => e.userId);
    const byItem = tally(EVENTS, (e) => e.itemId);
    const found = await counts(config, [...byUser.keys()], [...byItem.keys()]);
    assert.deepEqual(found.users, byUser, 'users: nothing lost or doubled');
    assert.deepEqual(found.items, byItem, 'items: nothing lost or doubled');
  });
});
