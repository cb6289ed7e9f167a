import type { Interaction, Item } from '../domain/events.ts';

/**
 * Scenario slices in the spirit of the paper's benchmark. Every scored case is tagged from exact counts of
 * what the stream saw **before** its event (the event itself is not counted), kept by `HistoryTracker`
 * beside the engine's own (decayed, approximate) state, so a slice never depends on a model's features:
 *
 * - `all`: every case.
 * - `cold-user`: the user had fewer than `coldUserMinInteractions` interactions so far. The default, 5,
 *   is the sampler's `coldUserMaxInteractions` (at most 5 with the triggering one included).
 * - `cold-item`: the true next item had fewer than `coldItemMinInteractions` interactions so far, by any
 *   user (0 = brand new to the stream). Default 10.
 * - `evolving`: the user's recent behaviour departs from their long-term behaviour: the category mix of
 *   their last `recentItems` items (default 10) and that of all their earlier items (at least
 *   `minLongTermItems`, default 20) are at total-variation distance ≥ `minDistance` (default 0.4). A mix is
 *   the share of each category, an item with several categories splitting its weight equally; items without
 *   categories do not count, and a side with none leaves the case out of the slice. On ml-100k's genres,
 *   0.4 is about the top fifth of eligible cases (median distance ≈ 0.34).
 *
 * A case can be in several slices.
 */

export const SLICES = ['all', 'cold-user', 'cold-item', 'evolving'] as const;
export type Slice = (typeof SLICES)[number];

export interface SliceRules {
  /** cold-user: fewer interactions than this before the event. @default 5 */
  readonly coldUserMinInteractions: number;
  /** cold-item: the true item had fewer interactions than this before the event. @default 10 */
  readonly coldItemMinInteractions: number;
  /** evolving: size of the recent window, in items. @default 10 */
  readonly recentItems: number;
  /** evolving: earlier items needed for a long-term mix. @default 20 */
  readonly minLongTermItems: number;
  /** evolving: total-variation distance between the two category mixes, 0..1. @default 0.4 */
  readonly minDistance: number;
}

export const DEFAULT_SLICE_RULES: SliceRules = {
  coldUserMinInteractions: 5,
  coldItemMinInteractions: 10,
  recentItems: 10,
  minLongTermItems: 20,
  minDistance: 0.4,
};

/** What a case was tagged with, and the numbers behind the tags (kept in the report for inspection). */
export interface CaseTags {
  readonly slices: readonly Slice[];
  readonly userInteractions: number;
  readonly itemInteractions: number;
  /** Total-variation distance of recent vs long-term category mix; null when the user has too little history. */
  readonly interestShift: number | null;
}

/** Exact per-user and per-item history of the stream so far; `tag` before `observe` for each event. */
export class HistoryTracker {
  private readonly itemCounts = new Map<string, number>();
  private readonly histories = new Map<string, string[]>();
  private readonly categories: ReadonlyMap<string, readonly string[]>;

  constructor(
    items: readonly Pick<Item, 'itemId' | 'categories'>[],
    readonly rules: SliceRules = DEFAULT_SLICE_RULES,
  ) {
    this.categories = new Map(items.map((i) => [i.itemId, i.categories]));
  }

  tag(event: Pick<Interaction, 'userId' | 'itemId'>): CaseTags {
    const history = this.histories.get(event.userId) ?? [];
    const itemInteractions = this.itemCounts.get(event.itemId) ?? 0;
    const interestShift = this.shift(history);
    const slices: Slice[] = ['all'];
    if (history.length < this.rules.coldUserMinInteractions) slices.push('cold-user');
    if (itemInteractions < this.rules.coldItemMinInteractions) slices.push('cold-item');
    if (interestShift !== null && interestShift >= this.rules.minDistance) slices.push('evolving');
    return { slices, userInteractions: history.length, itemInteractions, interestShift };
  }

  observe(event: Pick<Interaction, 'userId' | 'itemId'>): void {
    this.itemCounts.set(event.itemId, (this.itemCounts.get(event.itemId) ?? 0) + 1);
    let history = this.histories.get(event.userId);
    if (!history) this.histories.set(event.userId, (history = []));
    history.push(event.itemId);
  }

  private shift(history: readonly string[]): number | null {
    const { recentItems, minLongTermItems } = this.rules;
    if (history.length < recentItems + minLongTermItems) return null;
    const cut = history.length - recentItems;
    const recent = this.mix(history, cut, history.length);
    const longTerm = this.mix(history, 0, cut);
    return recent && longTerm ? totalVariation(recent, longTerm) : null;
  }

  private mix(history: readonly string[], from: number, to: number): Map<string, number> | null {
    const weights = new Map<string, number>();
    let total = 0;
    for (let i = from; i < to; i++) {
      const cats = this.categories.get(history[i]!) ?? [];
      for (const c of cats) weights.set(c, (weights.get(c) ?? 0) + 1 / cats.length);
      if (cats.length > 0) total++;
    }
    if (total === 0) return null;
    for (const [c, w] of weights) weights.set(c, w / total);
    return weights;
  }
}

/** ½ Σ |p − q| over the union of categories: 0 for equal mixes, 1 for disjoint ones. */
export function totalVariation(p: ReadonlyMap<string, number>, q: ReadonlyMap<string, number>): number {
  let sum = 0;
  for (const [c, v] of p) sum += Math.abs(v - (q.get(c) ?? 0));
  for (const [c, v] of q) if (!p.has(c)) sum += v;
  return sum / 2;
}
