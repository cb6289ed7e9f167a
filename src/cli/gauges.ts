import type { Pipeline } from '../main.ts';

/**
 * Gauges that are read rather than told: consumer lag and the store's user and item counts
 * (`starstream_store_users`, `_items`), refreshed every `everyMs` while a pipeline runs (`run`, and the
 * in-process runs of `demo` and `replay`). `stop()` clears the timer and waits for the refresh in flight, so
 * a lag query never races the event log's shutdown; it can be called more than once.
 */
export function refreshGauges(pipeline: Pick<Pipeline, 'runner' | 'engine' | 'metrics'>, everyMs: number): { refresh(): Promise<void>; stop(): Promise<void> } {
  const { runner, engine, metrics } = pipeline;
  let inFlight: Promise<unknown> = Promise.resolve();
  const refresh = async (): Promise<void> => {
    inFlight = Promise.allSettled([runner.lag(), engine.store.counts().then((c) => metrics.setStoreSize(c.users, c.items))]);
    await inFlight;
  };
  const timer = setInterval(() => void refresh(), everyMs);
  timer.unref();
  return {
    refresh,
    stop: async () => {
      clearInterval(timer);
      await inFlight;
    },
  };
}
