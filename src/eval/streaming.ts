import type { Interaction } from '../domain/events.ts';
import type { CollaborativeLearner, NegativeSampler } from '../stages/embeddings/index.ts';
import { StoreView, type ItemMerger } from '../stages/state/store-view.ts';
import { topByScore } from '../stages/ranking/index.ts';
import { coldUser, prepareCase, type CaseOptions } from '../pipeline/recommend.ts';
import type { Scorer } from '../star/port.ts';
import type { VectorStore } from '../store/port.ts';
import { MetricMeans, hitAt, ndcgAt } from './metrics.ts';

/**
 * The streaming (prequential) protocol: events in time order; for each one, first recommend for its user
 * with the state learned from every earlier event, then learn the event. A hit is the event's item in the
 * top K. The first `warmupShare` of events only trains. Consumed items are excluded, as in the stream.
 * Every system ranks the same candidate set with the same evidence, built once per event.
 */

export interface StreamingEngine {
  readonly store: VectorStore;
  readonly mergeItem: ItemMerger;
  readonly learner: CollaborativeLearner;
  readonly negatives: NegativeSampler;
  readonly negativesPerEvent: number;
  readonly caseOptions: CaseOptions;
  readonly dimension: number;
  readonly consumedFilterBytes: number;
}

export interface StreamingOptions {
  readonly k: number;
  readonly warmupShare: number;
  /** Called every `progressEvery` events with how many are done. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly progressEvery?: number;
}

export interface StreamingRow {
  readonly system: string;
  readonly cases: number;
  readonly hitRate: number;
  readonly ndcg: number;
}

export async function evaluateStreaming(
  events: readonly Interaction[],
  engine: StreamingEngine,
  systems: readonly Scorer[],
  options: StreamingOptions,
): Promise<StreamingRow[]> {
  const means = systems.map(() => new MetricMeans());
  const firstScored = Math.floor(events.length * options.warmupShare);
  // Every event is committed, which also empties the view's cache: it never grows.
  const view = new StoreView(engine.store, engine.mergeItem);
  for (let t = 0; t < events.length; t++) {
    const event = events[t]!;
    if (t >= firstScored) await scoreEvent(view, event, engine, systems, means, options.k);
    await learnEvent(view, event, engine);
    if (options.onProgress && (t + 1) % (options.progressEvery ?? 1_000) === 0) options.onProgress(t + 1, events.length);
  }
  return systems.map((s, i) => ({
    system: s.modelVersion,
    cases: means[i]!.count,
    hitRate: means[i]!.mean('hit'),
    ndcg: means[i]!.mean('ndcg'),
  }));
}

async function scoreEvent(
  view: StoreView,
  event: Interaction,
  engine: StreamingEngine,
  systems: readonly Scorer[],
  means: readonly MetricMeans[],
  k: number,
): Promise<void> {
  await view.load([event.userId], []);
  const user = view.user(event.userId) ?? coldUser(event.userId, engine.dimension, engine.consumedFilterBytes);
  await view.load([], user.recentItems.slice(0, engine.caseOptions.candidates.recentItemsForCooccurrence).map((r) => r.id));
  const { evidence } = await prepareCase(view, user, engine.caseOptions, event.timestampMs, null);
  const scoringCase = { eventId: event.eventId, atMs: event.timestampMs, user: evidence.user, candidates: evidence.candidates };
  for (let s = 0; s < systems.length; s++) {
    const [scores] = await systems[s]!.score([scoringCase]);
    const ranked = topByScore(evidence.candidates, scores!, k);
    const rank = ranked.findIndex((r) => r.evidence.itemId === event.itemId);
    means[s]!.add({ hit: hitAt(rank, k), ndcg: ndcgAt(rank, k) });
  }
}

async function learnEvent(view: StoreView, event: Interaction, engine: StreamingEngine): Promise<void> {
  const negatives = engine.negatives.sample(engine.negativesPerEvent, event.itemId);
  engine.negatives.observe(event.itemId);
  await view.load([event.userId], []);
  await view.load([], engine.learner.itemsToLoad(view.user(event.userId), event, negatives));
  engine.learner.learn(view, event, negatives);
  await view.commit();
}
