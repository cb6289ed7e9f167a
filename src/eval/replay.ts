import type { Config } from '../config/schema.ts';
import type { ScoringCase } from '../domain/evidence.ts';
import type { Interaction } from '../domain/events.ts';
import type { Rng } from '../data/random.ts';
import { coldUser } from '../pipeline/recommend.ts';
import { generateCandidates } from '../stages/candidates/index.ts';
import { evidenceForItems } from '../stages/evidence/for-items.ts';
import type { CstTemplates } from '../cst/index.ts';
import type { StoreView, ItemMerger } from '../stages/state/store-view.ts';
import { learnEventInto, type CollaborativeLearner, type NegativeSampler } from '../stages/embeddings/index.ts';
import type { CaseOptions } from '../pipeline/recommend.ts';
import type { VectorStore } from '../store/port.ts';

/**
 * The steps every time-ordered replay shares (the streaming protocol, the evaluation harness and
 * `starstream cases export`): learn one event the way the stream does, and freeze one event as a case of
 * the paper's protocol (the true item plus sampled negatives, with CST evidence from the state before the
 * event).
 */

/** The parts of the engine (`buildEngine`) a replay uses, with the config values it needs. */
export interface ReplayEngine {
  readonly store: VectorStore;
  readonly mergeItem: ItemMerger;
  readonly learner: CollaborativeLearner;
  readonly negatives: NegativeSampler;
  /** The same draws over item slots, for stores that open live batches. */
  readonly negativeSlots: NegativeSampler<number>;
  readonly negativesPerEvent: number;
  readonly caseOptions: CaseOptions;
  readonly dimension: number;
  readonly consumedFilterBytes: number;
}

/** An engine (`buildEngine`) with the config values a replay needs. */
/**
 * The config a replay runs on: the same, with the embedded store's graph refreshes made inline, so a replay's
 * results depend on its events alone, not on when a worker thread finished a rebuild (`store.embedded.indexBuild`).
 */
export function replayConfig<C extends Pick<Config, 'store'>>(config: C): C {
  return { ...config, store: { ...config.store, embedded: { ...config.store.embedded, indexBuild: 'inline' } } };
}

export function replayEngine<E extends Omit<ReplayEngine, 'negativesPerEvent' | 'dimension' | 'consumedFilterBytes'>>(
  config: Pick<Config, 'embeddings' | 'store'>,
  engine: E,
): E & ReplayEngine {
  return { ...engine, negativesPerEvent: config.embeddings.negatives, dimension: config.store.dimension, consumedFilterBytes: config.store.consumedFilterBytes };
}

/**
 * The learning step of the stream: sample negatives, learn, commit. On a store with live batches (the embedded
 * store) exactly as the pipeline does it (`BatchProcessor`); otherwise through the view.
 */
export async function learnEvent(
  view: StoreView,
  event: Interaction,
  engine: Pick<ReplayEngine, 'learner' | 'negatives' | 'negativeSlots' | 'negativesPerEvent'>,
): Promise<void> {
  if (view.store.openBatch) {
    const batch = await view.store.openBatch();
    learnEventInto(engine.learner, engine.negativeSlots, batch.state, event, new Int32Array(engine.negativesPerEvent));
    await batch.commit();
    // Nothing to write: this empties the view's cache, which read the state before this event.
    await view.commit();
    return;
  }
  const negatives = engine.negatives.sample(engine.negativesPerEvent, event.itemId);
  engine.negatives.observe(event.itemId);
  await view.load([event.userId], []);
  await view.load([], engine.learner.itemsToLoad(view.user(event.userId), event, negatives));
  engine.learner.learn(view, event, negatives);
  // Every event is committed, which also empties the view's cache: it never grows.
  await view.commit();
}

/** What a replay knows beyond the store: exact consumed sets and the item pools negatives come from. */
export class ReplayState {
  readonly consumed = new Map<string, Set<string>>();
  /** Distinct items seen so far (uniform pool). */
  readonly seenItems: string[] = [];
  private readonly seen = new Set<string>();
  /** The item of every event so far (popularity-weighted pool). */
  readonly interactions: string[] = [];

  constructor(readonly rng: Rng) {}

  observe(event: Interaction): void {
    let set = this.consumed.get(event.userId);
    if (!set) this.consumed.set(event.userId, (set = new Set()));
    set.add(event.itemId);
    if (!this.seen.has(event.itemId)) {
      this.seen.add(event.itemId);
      this.seenItems.push(event.itemId);
    }
    this.interactions.push(event.itemId);
  }

  /** `n` distinct items, none consumed by the user nor `positive`; null when the pool is too small. */
  negatives(userId: string, positive: string, n: number, sampler: NegativeSampling): string[] | null {
    const consumed = this.consumed.get(userId) ?? new Set<string>();
    const allowed = (id: string): boolean => id !== positive && !consumed.has(id);
    const chosen = new Set<string>();
    const pool = sampler === 'uniform' ? this.seenItems : this.interactions;
    for (let tries = 0; chosen.size < n && tries < 50 * n && pool.length > 0; tries++) {
      const id = pool[this.rng.int(pool.length)]!;
      if (allowed(id)) chosen.add(id);
    }
    if (chosen.size < n) {
      // Rejection kept failing (a heavy user or a short history): draw from the explicit remainder.
      const rest = this.rng.shuffle(this.seenItems.filter((id) => allowed(id) && !chosen.has(id)));
      for (const id of rest) {
        if (chosen.size >= n) break;
        chosen.add(id);
      }
    }
    return chosen.size < n ? null : [...chosen];
  }
}

/** How negatives are drawn from the seen items the user has not interacted with. */
export type NegativeSampling = 'uniform' | 'popularity';

export interface PaperCase {
  /** Index of the true item in `case.candidates`. */
  readonly label: number;
  readonly itemId: string;
  readonly case: ScoringCase;
}

/**
 * The event as a case of the paper's protocol: its item plus `candidates − 1` negatives in a seeded random
 * order, with evidence (features and sentences) for each from the state before the event. `repeat` when the
 * user had the item already, `fewItems` when the stream has seen too few items to sample from.
 */
export async function buildPaperCase(
  view: StoreView,
  event: Interaction,
  engine: Pick<ReplayEngine, 'caseOptions' | 'dimension' | 'consumedFilterBytes'> & { readonly templates: CstTemplates },
  state: ReplayState,
  candidates: number,
  sampler: NegativeSampling,
): Promise<PaperCase | 'repeat' | 'fewItems'> {
  if (state.consumed.get(event.userId)?.has(event.itemId)) return 'repeat';
  const negatives = state.negatives(event.userId, event.itemId, candidates - 1, sampler);
  if (!negatives) return 'fewItems';
  const itemIds = state.rng.shuffle([event.itemId, ...negatives]);
  const o = engine.caseOptions;
  await view.load([event.userId], []);
  const user = view.user(event.userId) ?? coldUser(event.userId, engine.dimension, engine.consumedFilterBytes);
  await view.load([], user.recentItems.slice(0, o.candidates.recentItemsForCooccurrence).map((r) => r.id));
  const candidateSet = await generateCandidates(view, user, o.candidates, event.timestampMs);
  const evidence = await evidenceForItems(view, user, candidateSet, itemIds, event.timestampMs, o.evidence, engine.templates);
  return {
    label: itemIds.indexOf(event.itemId),
    itemId: event.itemId,
    case: { eventId: event.eventId, atMs: event.timestampMs, user: evidence.user, candidates: evidence.candidates },
  };
}
