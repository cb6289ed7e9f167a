import { isRetriable } from '../errors/index.ts';

/** How an adapter retries a transient failure. Defaults suit tests; production config raises them. */
export interface RetryPolicy {
  readonly retries: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Each delay is multiplied by this factor. */
  readonly multiplier: number;
  /** Share of each delay that is random, 0..1, so instances that failed together do not retry together. */
  readonly jitter: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  retries: 5,
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  multiplier: 2,
  jitter: 0.2,
};

export interface RetryHooks {
  /** Called before each wait; `attempt` counts from 1. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Decides what is worth another try; by default only `TransientError`s are. */
  shouldRetry?: (err: unknown) => boolean;
  signal?: AbortSignal;
  random?: () => number;
}

export function backoffDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** (attempt - 1));
  const spread = base * policy.jitter;
  // Jitter spreads retries around the exponential curve but never past the ceiling.
  return Math.min(policy.maxDelayMs, Math.max(0, Math.round(base - spread + 2 * spread * random())));
}

/** Runs `fn` until it succeeds, fails with a non-retriable error, or runs out of retries (last error thrown). */
export async function withRetry<T>(fn: () => Promise<T>, policy: RetryPolicy, hooks: RetryHooks = {}): Promise<T> {
  const shouldRetry = hooks.shouldRetry ?? isRetriable;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt > policy.retries || !shouldRetry(err) || hooks.signal?.aborted) throw err;
      const delayMs = backoffDelayMs(policy, attempt, hooks.random);
      hooks.onRetry?.(err, attempt, delayMs);
      await sleep(delayMs, hooks.signal);
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
