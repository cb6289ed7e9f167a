/**
 * The mixture sequential probability ratio test (mSPRT) of Johari, Koomen, Pekelis and Walsh, "Peeking at A/B
 * tests" (KDD 2017), on the difference of two hit rates, θ = p_challenger − p_champion.
 *
 * With n_A, n_B trials and hit rates p̂_A, p̂_B, the estimate θ̂ = p̂_B − p̂_A has variance
 * V = p_A(1−p_A)/n_A + p_B(1−p_B)/n_B. In information time I = 1/V the score θ̂·I is (by the CLT) a Brownian
 * motion with drift θ, as long as the allocation ratio is stable (the user hash keeps it so). Mixing its
 * likelihood ratio against θ₀ over θ ~ N(θ₀, τ²) gives
 *
 *     Λ(θ₀) = sqrt(V / (V + τ²)) · exp( τ² (θ̂ − θ₀)² / (2 V (V + τ²)) ),
 *
 * a nonnegative martingale under θ = θ₀ with mean 1. By Ville's inequality P(∃ n: Λ_n ≥ 1/α) ≤ α: the test may
 * be looked at after every event and stopped at any time, and its error rate stays ≤ α. Inverting it gives
 * the always-valid confidence sequence {θ₀ : Λ(θ₀) < 1/α}, an interval θ̂ ± w with
 *
 *     w² = V (V + τ²) / τ² · (2 ln(1/α) + ln((V + τ²) / V)),
 *
 * which covers the true θ at every n simultaneously with probability ≥ 1 − α. τ (`mixtureSd`) tunes where the
 * test is fastest: effects near τ are detected soonest; any τ keeps the guarantee.
 *
 * Approximations, stated: V uses the observed rates (plug-in), smoothed by half a hit so an early 0/n does
 * not give V = 0, and the CLT is asymptotic; the minimum sample per arm keeps both honest. Outcomes are taken
 * as independent trials; a user with many events counts many times, which understates V when users differ a
 * lot in hit propensity (a per-user cluster variance would fix it; not done here).
 */

export interface Proportion {
  readonly trials: number;
  readonly hits: number;
}

export interface SequentialResult {
  /** θ̂ = challenger − champion hit rate. */
  readonly difference: number;
  /** Always-valid (1 − α) confidence sequence on θ at this look. */
  readonly lower: number;
  readonly upper: number;
  /** Λ(0): evidence against "no difference"; H0 is rejected when it reaches 1/α. */
  readonly likelihoodRatio: number;
  /** Always-valid p-value at this look, min(1, 1/Λ(0)); the running minimum over looks is also valid. */
  readonly pValue: number;
  /** V, the plug-in variance of θ̂. */
  readonly variance: number;
}

/** The mSPRT at one look; `alpha` in (0, 1), `mixtureSd` (τ) > 0. NaNs when either side has no trials. */
export function msprt(champion: Proportion, challenger: Proportion, alpha: number, mixtureSd: number): SequentialResult {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  if (!(mixtureSd > 0)) throw new RangeError(`mixtureSd must be positive, got ${mixtureSd}`);
  if (champion.trials <= 0 || challenger.trials <= 0) {
    return { difference: Number.NaN, lower: Number.NaN, upper: Number.NaN, likelihoodRatio: Number.NaN, pValue: 1, variance: Number.NaN };
  }
  const pa = champion.hits / champion.trials;
  const pb = challenger.hits / challenger.trials;
  const variance = bernoulliVariance(champion) + bernoulliVariance(challenger);
  const tau2 = mixtureSd * mixtureSd;
  const theta = pb - pa;
  const logLr = 0.5 * Math.log(variance / (variance + tau2)) + (tau2 * theta * theta) / (2 * variance * (variance + tau2));
  const width = Math.sqrt(((variance * (variance + tau2)) / tau2) * (2 * Math.log(1 / alpha) + Math.log((variance + tau2) / variance)));
  const likelihoodRatio = Math.exp(logLr);
  return {
    difference: theta,
    lower: theta - width,
    upper: theta + width,
    likelihoodRatio,
    pValue: Math.min(1, Math.exp(-logLr)),
    variance,
  };
}

/** Variance of one hit rate's estimate, p(1−p)/n with p smoothed to (hits + ½)/(n + 1). */
function bernoulliVariance(p: Proportion): number {
  const smoothed = (p.hits + 0.5) / (p.trials + 1);
  return (smoothed * (1 - smoothed)) / p.trials;
}

/**
 * An always-valid (1 − α) confidence sequence for one proportion (a single arm's hit rate in a status table):
 * the same normal mixture with the plug-in variance p(1−p)/n.
 */
export function proportionSequence(p: Proportion, alpha: number, mixtureSd: number): { readonly rate: number; readonly lower: number; readonly upper: number } {
  if (p.trials <= 0) return { rate: Number.NaN, lower: 0, upper: 1 };
  const rate = p.hits / p.trials;
  const v = bernoulliVariance(p);
  const tau2 = mixtureSd * mixtureSd;
  const width = Math.sqrt(((v * (v + tau2)) / tau2) * (2 * Math.log(1 / alpha) + Math.log((v + tau2) / v)));
  return { rate, lower: Math.max(0, rate - width), upper: Math.min(1, rate + width) };
}
