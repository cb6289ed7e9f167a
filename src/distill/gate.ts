/**
 * The publish gate: the challenger replaces the champion only when its average HR (mean of HR@1/3/5, 0..1)
 * on the held-out window exceeds the champion's by more than `margin`. Strictly more, so a tie never wins
 * at a margin of 0 or above; a negative margin lets a slightly worse model through (bootstrapping a registry
 * on little data, tests). Both sides are scored on the same cases, so the comparison is paired.
 */

export interface GateDecision {
  readonly publish: boolean;
  /** challenger − champion average HR. */
  readonly gain: number;
  readonly margin: number;
}

export function gate(championAvgHr: number, challengerAvgHr: number, margin: number): GateDecision {
  if (!Number.isFinite(championAvgHr) || !Number.isFinite(challengerAvgHr)) {
    throw new Error(`gate: average HR must be finite (champion ${championAvgHr}, challenger ${challengerAvgHr})`);
  }
  // Rounded to 1e-9 so that float noise (0.51 − 0.5 = 0.010000000000000009) cannot decide a tie at the margin;
  // real differences of an average HR over n cases are multiples of 1/(3n), far above it.
  const gain = Math.round((challengerAvgHr - championAvgHr) * 1e9) / 1e9;
  return { publish: gain > margin, gain, margin };
}
