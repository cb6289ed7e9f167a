/**
 * The two small clocks behind the sampler's budget, both driven by event time (see `./index.ts` for why):
 * a token bucket that caps how many cases a strategy may take, and a decayed-rate estimate of how often a
 * strategy's condition holds, from which the acceptance probability is derived.
 *
 * Event time is not monotonic across partitions (a batch interleaves them), so both only ever move forward:
 * an earlier timestamp than one already seen neither refills nor decays anything.
 */

/** A token bucket: `ratePerMinute` tokens per minute of event time, at most `capacity`, starting full. */
export class TokenBucket {
  private tokens: number;
  private lastMs: number | null = null;

  constructor(
    private readonly ratePerMinute: number,
    private readonly capacity: number,
  ) {
    this.tokens = capacity;
  }

  /** Refills up to `nowMs`; then takes one token if there is one. */
  take(nowMs: number): boolean {
    this.advance(nowMs);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Tokens available now (after refilling to `nowMs`). */
  available(nowMs: number): number {
    this.advance(nowMs);
    return this.tokens;
  }

  private advance(nowMs: number): void {
    if (this.lastMs === null) {
      this.lastMs = nowMs;
      return;
    }
    if (nowMs <= this.lastMs) return;
    this.tokens = Math.min(this.capacity, this.tokens + ((nowMs - this.lastMs) / 60_000) * this.ratePerMinute);
    this.lastMs = nowMs;
  }
}

/**
 * Events per minute, estimated as an exponentially decayed count with time constant `windowMs`:
 * `count ← count·exp(−Δt/τ) + 1`; a steady rate r per ms gives `count → r·τ`, so `rate = count/τ`.
 * Before one window has passed the estimate is low (the count has not built up), which only makes the
 * sampler more eager at the start; the token bucket still caps it.
 */
export class RateEstimator {
  private count = 0;
  private lastMs: number | null = null;

  constructor(private readonly windowMs: number) {}

  observe(nowMs: number): void {
    if (this.lastMs !== null && nowMs > this.lastMs) this.count *= Math.exp(-(nowMs - this.lastMs) / this.windowMs);
    if (this.lastMs === null || nowMs > this.lastMs) this.lastMs = nowMs;
    this.count += 1;
  }

  /** Estimated events per minute of event time. */
  perMinute(): number {
    return (this.count / this.windowMs) * 60_000;
  }
}
