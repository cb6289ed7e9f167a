import type { ScoringCase } from '../domain/evidence.ts';
import type { Interaction } from '../domain/events.ts';
import type { CstTemplates } from '../cst/index.ts';
import { StoreView } from '../stages/state/store-view.ts';
import { topByScore } from '../stages/ranking/index.ts';
import { coldUser, prepareCase } from '../pipeline/recommend.ts';
import type { Scorer } from '../star/port.ts';
import { MetricMeans, hitAt, ndcgAt } from './metrics.ts';
import { learnEvent, type ReplayEngine } from './replay.ts';

/**
 * The streaming (prequential) protocol: events in time order; for each one, first recommend for its user
 * with the state learned from every earlier event, then learn the event. A hit is the event's item in the
 * top K. The first `warmupShare` of events only trains. Consumed items are excluded, as in the stream.
 * Every system ranks the same candidate set with the same evidence, built once per event.
 */

/** The engine parts the protocol uses (see `ReplayEngine`). */
export type StreamingEngine = ReplayEngine;

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
  const scoringCase = await streamingCase(view, event, engine, null);
  for (let s = 0; s < systems.length; s++) {
    const [scores] = await systems[s]!.score([scoringCase]);
    const rank = rankOf(scoringCase, scores!, event.itemId, k);
    means[s]!.add({ hit: hitAt(rank, k), ndcg: ndcgAt(rank, k) });
  }
}

/**
 * The event's case in the streaming protocol: the stream's own candidate set for the user (the whole
 * catalogue as far as the candidate sources reach; consumed items excluded) with evidence from the state
 * before the event. Sentences are rendered only with `templates` (for scorers that read them).
 */
export async function streamingCase(
  view: StoreView,
  event: Interaction,
  engine: StreamingEngine,
  templates: CstTemplates | null,
): Promise<ScoringCase> {
  await view.load([event.userId], []);
  const user = view.user(event.userId) ?? coldUser(event.userId, engine.dimension, engine.consumedFilterBytes);
  await view.load([], user.recentItems.slice(0, engine.caseOptions.candidates.recentItemsForCooccurrence).map((r) => r.id));
  const { evidence } = await prepareCase(view, user, engine.caseOptions, event.timestampMs, templates);
  return { eventId: event.eventId, atMs: event.timestampMs, user: evidence.user, candidates: evidence.candidates };
}

/**
 * 0-based rank of `itemId` among the case's candidates ordered by score (equal scores keep the case's
 * order), or -1 when it is not within the first `depth` (or not a candidate at all).
 */
export function rankOf(scoringCase: ScoringCase, scores: Float32Array, itemId: string, depth: number): number {
  return topByScore(scoringCase.candidates, scores, depth).findIndex((r) => r.evidence.itemId === itemId);
}
