/**
 * Shared fixtures of the stage tests: a small engine on the real embedded store, interactions, and a helper
 * that learns events one by one the way the processor does (load, learn, commit).
 */
import { loadConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { buildEngine, type Engine } from '../../src/main.ts';
import { StoreView } from '../../src/stages/state/store-view.ts';
import type { UserProfile } from '../../src/store/port.ts';
import { bloomAdd, createBloom } from '../../src/util/bloom.ts';

export const T0 = Date.UTC(2025, 0, 1);

export async function smallEngine(overrides: ConfigInput = {}): Promise<Engine> {
  const config = loadConfig({ overrides: { ...overrides, store: { dimension: 8, ...overrides.store } } });
  const engine = buildEngine(config);
  await engine.store.init();
  return engine;
}

let seq = 0;
export function interaction(userId: string, itemId: string, timestampMs: number, extra: Partial<Interaction> = {}): Interaction {
  return { eventId: `ev${seq++}`, userId, itemId, type: 'view', value: null, timestampMs, context: {}, ...extra };
}

export function newView(engine: Engine): StoreView {
  return new StoreView(engine.store, engine.mergeItem);
}

/** Learns `event` through a view (loaded as the processor loads it) with the given negatives; commits. */
export async function learnOne(engine: Engine, event: Interaction, negatives: readonly string[] = [], view = newView(engine)) {
  await view.load([event.userId], []);
  await view.load([], engine.learner.itemsToLoad(view.user(event.userId), event, negatives));
  const profile = engine.learner.learn(view, event, negatives);
  // The item as the view saw it right after learning (commit empties the view's cache).
  const item = view.item(event.itemId);
  await view.commit();
  return { profile, item };
}

/** Learns a sequence of (user, item) pairs one second apart, without negatives. */
export async function learnPairs(engine: Engine, pairs: readonly (readonly [string, string])[], start = T0): Promise<void> {
  let t = start;
  for (const [u, i] of pairs) await learnOne(engine, interaction(u, i, (t += 1_000)));
}

/** A user profile with the given history (most recent first) and every history item in the consumed filter. */
export function userWith(
  engine: Engine,
  userId: string,
  recent: readonly string[],
  options: { vector?: Float32Array; consumedAlso?: readonly string[]; atMs?: number } = {},
): UserProfile {
  const dimension = engine.config.store.dimension;
  const consumed = createBloom(engine.config.store.consumedFilterBytes);
  for (const id of [...recent, ...(options.consumedAlso ?? [])]) bloomAdd(consumed, id);
  const at = options.atMs ?? T0;
  return {
    userId,
    vector: options.vector ?? Float32Array.from({ length: dimension }, (_, i) => (i === 0 ? 1 : 0)),
    recentItems: recent.map((id, i) => ({ id, atMs: at - i * 1_000 })),
    interactionCount: recent.length + (options.consumedAlso?.length ?? 0),
    consumed,
    firstSeenMs: at - 1_000_000,
    lastSeenMs: at,
  };
}

/** A unit-ish vector along axis `axis` scaled by `scale`. */
export function axis(engine: Engine, index: number, scale = 1): Float32Array {
  const v = new Float32Array(engine.config.store.dimension);
  v[index] = scale;
  return v;
}

/** Creates or changes an item in the store: vector, interaction count (popularity) and co-occurrence. */
export async function putItem(
  engine: Engine,
  itemId: string,
  options: { vector?: Float32Array; interactions?: number; cooccurrence?: Record<string, number>; atMs?: number; title?: string; categories?: string[] } = {},
): Promise<void> {
  const at = options.atMs ?? T0 - 60_000;
  await engine.store.applyItemDeltas([
    {
      itemId,
      initialVector: options.vector ?? new Float32Array(engine.config.store.dimension),
      interactions: options.interactions ?? 1,
      atMs: at,
      ...(options.cooccurrence ? { cooccurrence: new Map(Object.entries(options.cooccurrence)) } : {}),
    },
  ]);
  if (options.title !== undefined || options.categories !== undefined) {
    await engine.store.putItemMetadata([{ itemId, title: options.title ?? itemId, categories: options.categories ?? [] }]);
  }
}
