import type { CollaborativeState } from './collaborative-state.ts';

/**
 * Item slots by long-window popularity, best first (ties: smaller id), kept exact as items are raised: the
 * answer Qdrant gives by ordering its float index live. Ranking by the stored log-sum equals ranking by the
 * decayed count at any time, so only new events change the order, and they only ever raise an item. Exact
 * because popularity never falls: an item outside a full list can only enter by being raised, and then it is
 * offered here; a list shorter than `depth` holds every item with an interaction. A full scan happens only on
 * the first request, after a restore (`invalidate`), or for a `k` deeper than the list kept.
 */
export class PopularRanking {
  private ids: number[] | null = null;
  private depth = 0;

  constructor(private readonly state: CollaborativeState) {}

  invalidate(): void {
    this.ids = null;
  }

  /** The `k` most popular items, best first. */
  top(k: number): number[] {
    if (!this.ids || !(k <= this.depth || this.ids.length < this.depth)) this.scan(Math.max(k, 256));
    return this.ids!.slice(0, k);
  }

  /**
   * These items' popularity went up (all of one write, already applied): the new list is the merge of the
   * untouched ids, whose order still holds, with the raised items sorted afresh. Moving them up one at a time
   * would compare against neighbours raised in the same write but not yet moved, and misplace both.
   */
  raise(raised: readonly number[]): void {
    if (!this.ids || raised.length === 0) return;
    const set = new Set(raised);
    const kept = this.ids.filter((i) => !set.has(i));
    const added = [...set].sort((a, b) => (this.better(a, b) ? -1 : 1));
    const merged: number[] = [];
    let i = 0;
    let j = 0;
    while (merged.length < this.depth && (i < kept.length || j < added.length)) {
      if (j >= added.length || (i < kept.length && this.better(kept[i]!, added[j]!))) merged.push(kept[i++]!);
      else merged.push(added[j++]!);
    }
    this.ids = merged;
  }

  /** One pass with a bounded insertion list, not a sort of the catalogue. */
  private scan(depth: number): void {
    const s = this.state;
    const top: number[] = [];
    for (const i of s.items.liveSlots()) {
      if (s.itemExists[i] !== 1 || !(s.itemCount[i]! > 0)) continue;
      if (top.length === depth && !this.better(i, top[top.length - 1]!)) continue;
      let at = top.length;
      while (at > 0 && this.better(i, top[at - 1]!)) at--;
      top.splice(at, 0, i);
      if (top.length > depth) top.pop();
    }
    this.ids = top;
    this.depth = depth;
  }

  private better(a: number, b: number): boolean {
    const s = this.state;
    const la = s.longLog[a]!;
    const lb = s.longLog[b]!;
    return la > lb || (la === lb && s.items.idOf(a) < s.items.idOf(b));
  }
}
