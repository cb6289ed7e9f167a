import type { CandidateSource } from '../../domain/evidence.ts';
import type { BatchReader, ItemProfile, UserProfile } from '../../store/port.ts';
import { bloomHas } from '../../util/bloom.ts';

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

/** Co-occurrence of one candidate with the user's recent items; reused by the evidence stage. */
export interface CooccurrenceSignal {
  /** Sum of counts over the recent items. */
  total: number;
  /** The same sum with the i-th most recent item weighted `RECENCY_DECAY^i`: the latest item speaks loudest. */
  recencyWeighted: number;
  /** How many of the recent items co-occur with it. */
  items: number;
  /** The recent item with the largest count. */
  strongestWith: string;
  strongestCount: number;
}

export interface CandidateSet {
  readonly itemIds: readonly string[];
  readonly sources: ReadonlyMap<string, readonly CandidateSource[]>;
  readonly cooccurrence: ReadonlyMap<string, CooccurrenceSignal>;
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

  const cooccurrence = cooccurrenceSignals(recentItems);
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
  add(strongest(cooccurrence, options.fromCooccurrence, consumed), 'cooccurrence', options.fromCooccurrence);
  add(nearest.map((n) => n.id), 'embedding', options.fromEmbedding);
  add(popular.map((n) => n.id), 'popular', options.fromPopular);
  return { itemIds: [...sources.keys()], sources, cooccurrence, recentItems };
}

function isConsumed(user: UserProfile, itemId: string): boolean {
  return bloomHas(user.consumed, itemId);
}

/** Weight of the i-th most recent item in `recencyWeighted`; chosen on ml-100k's streaming protocol. */
export const RECENCY_DECAY = 0.7;

/** Signals for every co-occurring item, consumed or not: `add` filters consumed ones, far fewer checks. */
function cooccurrenceSignals(recentItems: readonly ItemProfile[]): Map<string, CooccurrenceSignal> {
  const signals = new Map<string, CooccurrenceSignal>();
  let weight = 1;
  for (const recent of recentItems) {
    for (const [other, count] of recent.cooccurrence) {
      if (count <= 0) continue;
      const s = signals.get(other);
      if (!s) {
        signals.set(other, { total: count, recencyWeighted: count * weight, items: 1, strongestWith: recent.itemId, strongestCount: count });
        continue;
      }
      s.total += count;
      s.recencyWeighted += count * weight;
      s.items += 1;
      if (count > s.strongestCount) {
        s.strongestCount = count;
        s.strongestWith = recent.itemId;
      }
    }
    weight *= RECENCY_DECAY;
  }
  return signals;
}

/**
 * The `k` unconsumed ids with the strongest recency-weighted co-occurrence, best first (ties by total, then
 * id). A bounded selection rather than a sort of every co-occurring item (thousands for a long history), and
 * the consumed-items filter is asked only about ids that would make the cut.
 */
function strongest(signals: ReadonlyMap<string, CooccurrenceSignal>, k: number, consumed: (id: string) => boolean): string[] {
  const top: [string, CooccurrenceSignal][] = [];
  if (k <= 0) return [];
  const before = (a: [string, CooccurrenceSignal], b: [string, CooccurrenceSignal]): boolean =>
    a[1].recencyWeighted > b[1].recencyWeighted ||
    (a[1].recencyWeighted === b[1].recencyWeighted && (a[1].total > b[1].total || (a[1].total === b[1].total && a[0] < b[0])));
  for (const entry of signals) {
    if (top.length === k && !before(entry, top[k - 1]!)) continue;
    if (consumed(entry[0])) continue;
    let i = top.length;
    while (i > 0 && before(entry, top[i - 1]!)) i--;
    top.splice(i, 0, entry);
    if (top.length > k) top.pop();
  }
  return top.map(([id]) => id);
}
