import { FatalError, errorCode, errorMessage } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import type { ConsumedBatch } from './port.ts';

/**
 * The answer every `EventConsumer.run()` gives before it starts, the same for each adapter: a consumer that
 * is stopping or stopped has nothing to run (resolved), a second `run()` is a programming error (rejected).
 * Null means the caller may start.
 */
export function refuseRun(state: string, groupId: string): Promise<void> | null {
  if (state === 'stopping' || state === 'stopped') return Promise.resolve();
  if (state === 'running') {
    return Promise.reject(new FatalError('CONSUMER_ALREADY_RUNNING', `group ${groupId}: run() called twice`));
  }
  return null;
}

/** The one log line of a failed batch that will come again: where, why, which attempt, and after how long. */
export function logRedelivery(logger: Logger, batch: ConsumedBatch, err: unknown, attempt: number, delayMs: number): void {
  logger.warn(
    {
      topic: batch.topic,
      partition: batch.partition,
      offset: batch.records[0]?.offset,
      code: errorCode(err),
      attempt,
      delayMs,
      reason: errorMessage(err),
    },
    'batch handler failed; the batch is redelivered from the committed offset',
  );
}
