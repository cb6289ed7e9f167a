import type { Rng } from './random.ts';

/**
 * Walker/Vose alias tables: draw from a discrete distribution in O(1) after an O(n) build. The synthetic
 * generator draws every event's item from one of these, which is what keeps it above a million draws a second.
 *
 * Many small distributions (one per category, one per item neighbourhood) are packed into one
 * {@link AliasSegments} so the whole set costs a few flat typed arrays instead of thousands of small objects.
 */
export interface AliasSegments {
  /** Number of segments (distributions). */
  readonly count: number;
  /** Number of outcomes in segment `segment`. */
  size(segment: number): number;
  /** Draws one outcome of `segment` and returns its value from `values`; -1 when the segment is empty. */
  sample(segment: number, rng: Rng): number;
}

/**
 * Builds alias tables for consecutive segments of `values`/`weights`: segment `s` spans indices
 * `offsets[s] … offsets[s + 1] - 1`. Weights must be finite and ≥ 0; a segment whose weights are all zero
 * samples uniformly, so callers never get an outcome they cannot use.
 */
export function buildAliasSegments(
  values: Int32Array,
  weights: Float64Array,
  offsets: Int32Array,
): AliasSegments {
  if (values.length !== weights.length) throw new RangeError('values and weights must have the same length');
  const last = offsets[offsets.length - 1];
  if (offsets.length === 0 || last !== values.length)
    throw new RangeError('offsets must end at values.length');
  const prob = new Float64Array(values.length);
  const alias = new Int32Array(values.length);
  // One scratch stack shared by all segments: its size bounds the largest segment.
  const small = new Int32Array(values.length);
  const large = new Int32Array(values.length);
  for (let s = 0; s + 1 < offsets.length; s++) {
    buildSegment(weights, prob, alias, small, large, offsets[s] as number, offsets[s + 1] as number);
  }
  const count = offsets.length - 1;
  return {
    count,
    size: (segment) => (offsets[segment + 1] as number) - (offsets[segment] as number),
    sample(segment, rng) {
      const start = offsets[segment] as number;
      const n = (offsets[segment + 1] as number) - start;
      if (n <= 0) return -1;
      const k = start + rng.int(n);
      return values[rng.next() < (prob[k] as number) ? k : (alias[k] as number)] as number;
    },
  };
}

/** Alias table for one distribution: `sample` returns an index into `weights`. */
export function buildAliasTable(weights: ArrayLike<number>): {
  sample(rng: Rng): number;
  readonly size: number;
} {
  const n = weights.length;
  const values = new Int32Array(n);
  for (let i = 0; i < n; i++) values[i] = i;
  const segments = buildAliasSegments(values, Float64Array.from(weights), Int32Array.of(0, n));
  return { size: n, sample: (rng) => segments.sample(0, rng) };
}

function buildSegment(
  weights: Float64Array,
  prob: Float64Array,
  alias: Int32Array,
  small: Int32Array,
  large: Int32Array,
  start: number,
  end: number,
): void {
  const n = end - start;
  if (n === 0) return;
  let total = 0;
  for (let i = start; i < end; i++) {
    const w = weights[i] as number;
    if (!(w >= 0) || !Number.isFinite(w))
      throw new RangeError(`weight ${i} must be finite and >= 0, got ${w}`);
    total += w;
  }
  let nSmall = 0;
  let nLarge = 0;
  for (let i = start; i < end; i++) {
    // Scaled so the mean is 1: entries below 1 borrow the rest of their column from an entry above 1.
    const scaled = total > 0 ? ((weights[i] as number) * n) / total : 1;
    prob[i] = scaled;
    alias[i] = i;
    if (scaled < 1) small[nSmall++] = i;
    else large[nLarge++] = i;
  }
  while (nSmall > 0 && nLarge > 0) {
    const s = small[--nSmall] as number;
    const l = large[nLarge - 1] as number;
    alias[s] = l;
    const rest = (prob[l] as number) + (prob[s] as number) - 1;
    prob[l] = rest;
    if (rest < 1) {
      nLarge--;
      small[nSmall++] = l;
    }
  }
  // Whatever is left is 1 up to rounding error.
  while (nLarge > 0) prob[large[--nLarge] as number] = 1;
  while (nSmall > 0) prob[small[--nSmall] as number] = 1;
}
