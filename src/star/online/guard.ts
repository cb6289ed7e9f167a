/**
 * The guard of the online blend: hit rates over the last `window` joined outcomes, for the learned blend and
 * for each single signal's ranking of the same lists, and the rule that decides what serves. The blend is
 * tracked (and keeps learning) while a signal serves in its place, so it can earn its way back.
 */

export interface GuardOptions {
  /** Joined outcomes the hit rates are taken over. @default 2000 */
  readonly window: number;
  /** No decision before this many outcomes are in the window. @default 1000 */
  readonly minOutcomes: number;
  /**
   * The blend falls back when the best signal's hit rate is ahead of it by more than this (absolute). Over 2,000
   * outcomes the difference of two similar rankers' rates has a standard deviation near 0.01; the margin sits
   * above it so that noise alone rarely switches. @default 0.015
   */
  readonly margin: number;
  /** Outcomes between two decisions. @default 100 */
  readonly checkEvery: number;
}

export const DEFAULT_GUARD_OPTIONS: GuardOptions = { window: 2_000, minOutcomes: 1_000, margin: 0.015, checkEvery: 100 };

/** Hit/miss of several rankers over a sliding window of outcomes; memory `window × rankers` bytes. */
export class WindowedHitRates {
  private readonly bits: Uint8Array;
  private readonly sums: Int32Array;
  private next = 0;
  /** Outcomes in the window now. */
  filled = 0;
  /** Outcomes ever recorded. */
  total = 0;

  constructor(
    readonly rankers: number,
    readonly window: number,
  ) {
    this.bits = new Uint8Array(rankers * window);
    this.sums = new Int32Array(rankers);
  }

  /** One outcome: `hits[r]` true when ranker `r` had the chosen item in its top K. */
  record(hits: ArrayLike<boolean>): void {
    const at = this.next * this.rankers;
    for (let r = 0; r < this.rankers; r++) {
      const hit = hits[r] ? 1 : 0;
      this.sums[r]! += hit - this.bits[at + r]!;
      this.bits[at + r] = hit;
    }
    this.next = (this.next + 1) % this.window;
    this.filled = Math.min(this.window, this.filled + 1);
    this.total++;
  }

  /** The window as JSON-able numbers (hits packed as base64), for a checkpoint. */
  capture(): WindowState {
    return { rankers: this.rankers, window: this.window, next: this.next, filled: this.filled, total: this.total, bits: Buffer.from(this.bits).toString('base64') };
  }

  /** Back to a `capture()`; false (and unchanged) when it is of another shape. */
  restore(saved: WindowState): boolean {
    const bits = typeof saved.bits === 'string' ? Buffer.from(saved.bits, 'base64') : null;
    if (saved.rankers !== this.rankers || saved.window !== this.window || !bits || bits.length !== this.bits.length) return false;
    if (!(Number.isInteger(saved.next) && saved.next >= 0 && saved.next < this.window && Number.isInteger(saved.filled) && saved.filled >= 0 && saved.filled <= this.window)) return false;
    this.bits.set(bits);
    this.next = saved.next;
    this.filled = saved.filled;
    this.total = Math.max(saved.total, saved.filled);
    this.sums.fill(0);
    for (let k = 0; k < this.bits.length; k++) this.sums[k % this.rankers]! += this.bits[k]!;
    return true;
  }

  rate(ranker: number): number {
    return this.filled === 0 ? 0 : this.sums[ranker]! / this.filled;
  }
}

/** `WindowedHitRates.capture()`. */
export interface WindowState {
  readonly rankers: number;
  readonly window: number;
  readonly next: number;
  readonly filled: number;
  readonly total: number;
  readonly bits: string;
}

/** What serves: the learned blend, or one signal (an index into the signals) in its place. */
export type ServingMode = { readonly kind: 'blend' } | { readonly kind: 'signal'; readonly signal: number };
export const BLEND: ServingMode = { kind: 'blend' };

/**
 * The decision, from the window's rates: fall back to the best signal when it leads the blend by more than
 * `margin`; back to the blend once the blend is within half the margin of the serving signal (hysteresis, so
 * that noise does not flip it on every check); to another signal when that one leads the serving one by more
 * than `margin`. Ties go to the lower signal index.
 */
export function decide(current: ServingMode, blendRate: number, signalRates: readonly number[], margin: number): ServingMode {
  let best = 0;
  for (let s = 1; s < signalRates.length; s++) if (signalRates[s]! > signalRates[best]!) best = s;
  const bestRate = signalRates[best] ?? 0;
  if (current.kind === 'blend') return bestRate - blendRate > margin ? { kind: 'signal', signal: best } : current;
  const servingRate = signalRates[current.signal] ?? 0;
  if (blendRate >= servingRate - margin / 2 && blendRate >= bestRate - margin) return BLEND;
  return bestRate - servingRate > margin ? { kind: 'signal', signal: best } : current;
}
