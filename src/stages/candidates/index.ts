import type { CandidateSource } from '../../domain/evidence.ts';
import type { BatchReader, ItemProfile, UserProfile } from '../../store/port.ts';
import { bloomHas } from '../../util/bloom.ts';
import { aggregateCooccurrence, rowsFromProfiles, type CooccurrenceSignals } from './cooccurrence.ts';

export { RECENCY_DECAY, type CooccurrenceSignal, type CooccurrenceSignals } from './cooccurrence.ts';

/**
 * Candidates: the union of three sources, each bounded, consumed items excluded (configurable):
 * - item-CF: items that co-occur with the user's most recent items, by summed co-occurrence count;
 * - embedding: nearest items to the user's vector;
 * - popular: the most popular items right now, which is what a cold user gets.
 */

export interface CandidateOptions {
  readonly fromEmbedding: number;
  readonly fromCooccurrence: number;
  readonly fromPopular: number;
  readonly recentItemsForCooccurrence: number;
  readonly maxCandidates: number;
  readonly excludeConsumed: boolean;
}

export interface CandidateSet {
  readonly itemIds: readonly string[];
  readonly sources: ReadonlyMap<string, readonly CandidateSource[]>;
  readonly cooccurrence: CooccurrenceSignals;
  /** Profiles of the recent items that seeded co-occurrence, most recent first. */
  readonly recentItems: readonly ItemProfile[];
}

export async function generateCandidates(
  view: BatchReader,
  user: UserProfile,
  options: CandidateOptions,
  nowMs: number,
): Promise<CandidateSet> {
  const recentIds = user.recentItems.slice(0, options.recentItemsForCooccurrence).map((r) => r.id);
  const recentItems = [...(await view.itemsById(recentIds)).values()];
  const consumed = (id: string): boolean => options.excludeConsumed && isConsumed(user, id);
  const recentSet = new Set(user.recentItems.map((r) => r.id));
  const exclude = options.excludeConsumed ? recentSet : undefined;

  const cooccurrence = aggregateCooccurrence(view.cooccurrenceRows ? view.cooccurrenceRows(recentIds) : rowsFromProfiles(recentItems));
  const overfetch = (k: number): number => k + Math.ceil(k / 2);
  const [nearest, popular] = await Promise.all([
    options.fromEmbedding > 0 && user.interactionCount > 0 ? view.searchItems(user.vector, overfetch(options.fromEmbedding), exclude) : [],
    options.fromPopular > 0 ? view.popularItems(overfetch(options.fromPopular) + recentSet.size, nowMs) : [],
  ]);

  const sources = new Map<string, CandidateSource[]>();
  const add = (ids: Iterable<string>, source: CandidateSource, limit: number): void => {
    let taken = 0;
    for (const id of ids) {
      if (taken >= limit) break;
      if (consumed(id)) continue;
      taken++;
      const list = sources.get(id);
      if (list) list.push(source);
      else if (sources.size < options.maxCandidates) sources.set(id, [source]);
    }
  };
  add(cooccurrence.strongest(options.fromCooccurrence, consumed), 'cooccurrence', options.fromCooccurrence);
  add(nearest.map((n) => n.id), 'embedding', options.fromEmbedding);
  add(popular.map((n) => n.id), 'popular', options.fromPopular);
  return { itemIds: [...sources.keys()], sources, cooccurrence, recentItems };
}

function isConsumed(user: UserProfile, itemId: string): boolean {
  return bloomHas(user.consumed, itemId);
}

