/**
 * Exponentially decayed event counts kept in log space, shared by every store adapter.
 *
 * A decayed count at time `t` is `C(t) = Σᵢ wᵢ·exp(−(t − tᵢ)/τ)` with `τ = halfLife / ln 2`. Factoring out the
 * read time gives `C(t) = exp(L − t/τ)` with `L = log Σᵢ wᵢ·exp(tᵢ/τ)`. The store keeps only `L`:
 *
 * - adding an event is `L ← logaddexp(L, tᵢ/τ + log wᵢ)`, which commutes and associates, so increments from
 *   several writers (or several deltas folded in any order) give the same `L`;
 * - `L` does not depend on the read time, so ranking items by `L` gives the same order as ranking by `C(t)`
 *   at any `t`: a store can index `L` and order by it without rewriting anything as time passes.
 *
 * `L` grows like `t/τ` (about 455 for a 30-day half-life and epoch milliseconds today, about 13 600 for a one-day
 * half-life), far inside float64 range; `exp` is only taken of `L − t/τ`, which stays small. An empty sum is
 * `-Infinity` (`EMPTY_LOG_SUM`), which JSON cannot carry: adapters that serialize it must map it themselves.
 */

/** `log` of an empty sum: the value of a counter that has seen no event. */
export const EMPTY_LOG_SUM = Number.NEGATIVE_INFINITY;

/** Time constant `τ = halfLife / ln 2`, in ms, of a half-life in ms. */
export function decayTauMs(halfLifeMs: number): number {
  return halfLifeMs / Math.LN2;
}

/** `log(exp(a) + exp(b))` without overflow; `-Infinity` is the identity. */
export function logAddExp(a: number, b: number): number {
  if (a === Number.NEGATIVE_INFINITY) return b;
  if (b === Number.NEGATIVE_INFINITY) return a;
  const hi = Math.max(a, b);
  return hi + Math.log1p(Math.exp(Math.min(a, b) - hi));
}

/**
 * Adds `count` events at `atMs` to the log-sum `logSum`: `logaddexp(logSum, atMs/τ + log count)`.
 *
 * @param logSum current value, `EMPTY_LOG_SUM` for a counter with no events
 * @param atMs event time, epoch ms
 * @param halfLifeMs half-life of the window, ms
 * @param count weight of the event (several interactions at once); `count <= 0` changes nothing
 * @default count 1
 */
export function logAddEvent(logSum: number, atMs: number, halfLifeMs: number, count = 1): number {
  if (!(count > 0)) return logSum;
  return logAddExp(logSum, atMs / decayTauMs(halfLifeMs) + Math.log(count));
}

/**
 * The decayed count `exp(logSum − nowMs/τ)` read at `nowMs`: the number of events, each weighted by
 * `2^(−age/halfLife)`. Events after `nowMs` weigh more than 1; callers read at the stream's event time.
 *
 * @returns 0 for `EMPTY_LOG_SUM`
 */
export function decayedCount(logSum: number, nowMs: number, halfLifeMs: number): number {
  if (logSum === Number.NEGATIVE_INFINITY) return 0;
  return Math.exp(logSum - nowMs / decayTauMs(halfLifeMs));
}
