/**
 * A fixed, log-spaced latency histogram: bounded memory whatever the traffic, and mergeable by adding counts,
 * so the histograms of several instances combine exactly. Eight buckets per doubling from 0.01 ms to about
 * 100 s (186 buckets); a quantile is reported as its bucket's upper bound, so it overstates the true value
 * by at most 2^(1/8) − 1 ≈ 9 % and never understates it: the conservative side for a guardrail. Values at or
 * below the first bound land in the first bucket, values above the last in an overflow bucket reported as
 * +Infinity.
 */

const MIN_MS = 0.01;
const PER_DOUBLING = 8;
export const LATENCY_BUCKETS = 186;

/** Upper bound of bucket `i`, ms. */
export function bucketUpperMs(i: number): number {
  return i >= LATENCY_BUCKETS ? Number.POSITIVE_INFINITY : MIN_MS * 2 ** ((i + 1) / PER_DOUBLING);
}

export function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  // ceil(log2(ms / MIN) · 8) − 1: the first bucket whose upper bound is ≥ ms (floating error can put a value
  // that sits exactly on a bound one bucket up, which only makes the quantile more conservative).
  const i = Math.ceil(Math.log2(ms / MIN_MS) * PER_DOUBLING) - 1;
  return Math.min(LATENCY_BUCKETS, Math.max(0, i));
}

export class LatencyHistogram {
  /** One count per bucket plus the overflow bucket at index {@link LATENCY_BUCKETS}. */
  readonly counts = new Float64Array(LATENCY_BUCKETS + 1);
  count = 0;

  add(ms: number): void {
    this.counts[bucketOf(ms)]! += 1;
    this.count++;
  }

  merge(other: { readonly counts: ArrayLike<number> }): void {
    for (let i = 0; i < this.counts.length; i++) {
      const c = other.counts[i] ?? 0;
      this.counts[i]! += c;
      this.count += c;
    }
  }

  /** Nearest-rank quantile (`q` in 0..1) as a bucket upper bound, ms; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    if (rank > this.count / 2) {
      // High quantiles (the guardrail's p99, read after every event) walk down from the top: a few buckets.
      let above = 0;
      for (let i = this.counts.length - 1; i >= 0; i--) {
        above += this.counts[i]!;
        if (this.count - above < rank) return bucketUpperMs(i);
      }
      return bucketUpperMs(0);
    }
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return bucketUpperMs(i);
    }
    return Number.POSITIVE_INFINITY;
  }

  /** Sparse JSON form: `[bucket, count]` pairs of the non-empty buckets. */
  toJSON(): readonly (readonly [number, number])[] {
    const out: [number, number][] = [];
    this.counts.forEach((c, i) => {
      if (c > 0) out.push([i, c]);
    });
    return out;
  }

  static fromJSON(pairs: readonly (readonly [number, number])[]): LatencyHistogram {
    const h = new LatencyHistogram();
    for (const [i, c] of pairs) {
      if (!Number.isInteger(i) || i < 0 || i > LATENCY_BUCKETS || !(c >= 0)) throw new RangeError(`bad latency bucket [${i}, ${c}]`);
      h.counts[i]! += c;
      h.count += c;
    }
    return h;
  }
}
