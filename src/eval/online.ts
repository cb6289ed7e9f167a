import type { RankedEvent } from '../pipeline/processor.ts';

/**
 * Online hit rate, as the stream sees it: when a user's next event arrives, was its item in the top K
 * recommended at the user's previous event? Tracked for the serving ranker and for popularity over the same
 * candidates, so the figure always has its baseline beside it. Memory: one top-K list per user and system,
 * the least recently active users forgotten beyond `maxUsers`.
 */
/** One labelled case: the user's next item arrived; was it in the list the model served, and by popularity? */
export interface OnlineOutcome {
  /** Version of the model that served the earlier list. */
  readonly modelVersion: string;
  readonly servedHit: boolean;
  readonly popularHit: boolean;
}

export class OnlineHitRate {
  private readonly last = new Map<string, { served: Set<string>; popular: Set<string>; modelVersion: string }>();
  cases = 0;
  servedHits = 0;
  popularHits = 0;
  /** Told every labelled case (the ops metrics count them per model version). */
  onOutcome: ((outcome: OnlineOutcome) => void) | null = null;

  constructor(
    private readonly k: number,
    private readonly maxUsers = 200_000,
  ) {}

  observe(ranked: RankedEvent): void {
    const { event } = ranked;
    const previous = this.last.get(event.userId);
    if (previous) {
      const servedHit = previous.served.has(event.itemId);
      const popularHit = previous.popular.has(event.itemId);
      this.cases++;
      if (servedHit) this.servedHits++;
      if (popularHit) this.popularHits++;
      this.last.delete(event.userId);
      this.onOutcome?.({ modelVersion: previous.modelVersion, servedHit, popularHit });
    }
    const popular = [...ranked.candidates]
      .sort((a, b) => b.features.popularity - a.features.popularity)
      .slice(0, this.k)
      .map((c) => c.itemId);
    this.last.set(event.userId, {
      served: new Set(ranked.ranked.slice(0, this.k).map((r) => r.evidence.itemId)),
      popular: new Set(popular),
      modelVersion: ranked.modelVersion,
    });
    if (this.last.size > this.maxUsers) this.last.delete(this.last.keys().next().value!);
  }

  get servedRate(): number {
    return this.cases ? this.servedHits / this.cases : 0;
  }

  get popularRate(): number {
    return this.cases ? this.popularHits / this.cases : 0;
  }
}
