import { FatalError } from '../errors/index.ts';

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
