/**
 * Two pipeline instances (as `starstream run` wires them, `buildPipeline`) sharing one store and one event log
 * (the embedded log in one process, or a Kafka broker), used to show what `store.itemWrites` does to item
 * updates that several instances make at once.
 */
import type { Config } from '../../src/config/schema.ts';
import type { Interaction } from '../../src/domain/events.ts';
import type { EventLog } from '../../src/eventlog/port.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildPipeline, buildStore, type Pipeline } from '../../src/main.ts';
import { racyItemStore, type RacyStore } from './racy-store.ts';

export const HOT_ITEMS = ['hot-0', 'hot-1', 'hot-2', 'hot-3'] as const;

/** `count` interactions of `users` users on the few `HOT_ITEMS`, one second apart, and how many each item got. */
export function hotItemEvents(
  count: number,
  users: number,
  seed = 0,
): { events: Interaction[]; perItem: Map<string, number> } {
  const t0 = 1_700_000_000_000;
  const perItem = new Map<string, number>();
  const events = Array.from({ length: count }, (_, i): Interaction => {
    const itemId = HOT_ITEMS[(i * 7 + seed + Math.floor(i / 5)) % HOT_ITEMS.length]!;
    perItem.set(itemId, (perItem.get(itemId) ?? 0) + 1);
    return {
      eventId: `e${seed}-${i}`,
      userId: `u${(i * 13) % users}`,
      itemId,
      type: 'click',
      value: null,
      timestampMs: t0 + i * 1_000,
      context: {},
    };
  });
  return { events, perItem };
}

/** The shared store: the config's store (embedded) with Qdrant-like racy item writes (`racyItemStore`). */
export async function sharedRacyStore(config: Config): Promise<RacyStore> {
  const store = racyItemStore(buildStore(config), config.store, 2);
  await store.init();
  return store;
}

/**
 * Starts two pipelines on `store`, each with its own processor, learner and consumers (the same consumer
 * groups, so they split the partitions). `log` = a shared embedded log; omitted, each builds the log the config
 * names (its own Kafka clients). Returns them and a `stop` that stops both and closes what they opened.
 */
export async function startTwoInstances(
  config: Config,
  store: RacyStore,
  log?: EventLog,
): Promise<{ instances: Pipeline[]; stop(): Promise<void> }> {
  const instances: Pipeline[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(instances.map((p) => p.runner.stop()));
    if (!log) await Promise.all(instances.map((p) => p.log.close()));
  };
  try {
    for (let i = 0; i < 2; i++) {
      // Its own Kafka client id, as another process would have (and so that group tools tell members apart).
      const kafka = { ...config.eventLog.kafka, clientId: `${config.eventLog.kafka.clientId}-${i}` };
      const own: Config = { ...config, eventLog: { ...config.eventLog, kafka } };
      const pipeline = await buildPipeline(own, { logger: silentLogger(), store, ...(log ? { log } : {}) });
      instances.push(pipeline);
      await pipeline.runner.start();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { instances, stop };
}

/** `interactionCount` of every hot item in the store. */
export async function hotItemCounts(store: RacyStore): Promise<Map<string, number>> {
  const items = await store.getItems([...HOT_ITEMS]);
  return new Map(HOT_ITEMS.map((id) => [id, items.get(id)?.interactionCount ?? 0]));
}

export function total(counts: ReadonlyMap<string, number>): number {
  let sum = 0;
  for (const n of counts.values()) sum += n;
  return sum;
}
