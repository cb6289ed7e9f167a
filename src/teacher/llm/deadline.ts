import { FatalError, TransientError, type StarstreamError } from '../../errors/index.ts';
import { LLM_ERROR_CODES } from './port.ts';

/**
 * One request's abort signal, the union of three causes that each end it differently: the caller's signal
 * (the per-case wall-time limit: `LLM_ABORTED`), the backend's own timeout (`LLM_TIMEOUT`, worth a retry), and
 * `close()` (`LLM_CLOSED`). Both backends use it so that the same cause always becomes the same error.
 */
export interface RequestDeadline {
  readonly signal: AbortSignal;
  /** What aborted `signal`, or null while it has not. The caller wins a tie: its deadline is the binding one. */
  cause(): 'caller' | 'timeout' | 'closed' | null;
  /** The error for the cause; call only once `signal` aborted. */
  error(what: string): StarstreamError;
  /** Clears the timer and the listeners. Idempotent. */
  dispose(): void;
}

export function requestDeadline(options: {
  readonly caller?: AbortSignal | undefined;
  readonly timeoutMs: number;
  readonly closing: AbortSignal;
}): RequestDeadline {
  const { caller, timeoutMs, closing } = options;
  const controller = new AbortController();
  let timedOut = false;
  const onAbort = (): void => controller.abort(caller?.aborted ? caller.reason : closing.reason);
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  caller?.addEventListener('abort', onAbort, { once: true });
  closing.addEventListener('abort', onAbort, { once: true });
  if (caller?.aborted || closing.aborted) onAbort();

  const cause = (): 'caller' | 'timeout' | 'closed' | null => {
    if (!controller.signal.aborted) return null;
    if (caller?.aborted) return 'caller';
    if (timedOut) return 'timeout';
    return 'closed';
  };
  return {
    signal: controller.signal,
    cause,
    error(what) {
      switch (cause()) {
        case 'caller':
          return new TransientError(LLM_ERROR_CODES.aborted, `${what}: aborted by the caller`, {
            cause: caller?.reason,
          });
        case 'timeout':
          return new TransientError(LLM_ERROR_CODES.timeout, `${what}: no answer within ${timeoutMs} ms`);
        default:
          return new FatalError(LLM_ERROR_CODES.closed, `${what}: the language model was closed`);
      }
    },
    dispose() {
      clearTimeout(timer);
      caller?.removeEventListener('abort', onAbort);
      closing.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * The requests a backend has in flight, so that `close()` can abort them and wait until each has settled
 * (its caller saw the `LLM_CLOSED` rejection) before freeing what they use.
 */
export class InFlightRequests {
  private readonly runs = new Set<Promise<unknown>>();

  track<T>(run: Promise<T>): Promise<T> {
    this.runs.add(run);
    const forget = (): void => void this.runs.delete(run);
    run.then(forget, forget);
    return run;
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.runs]);
  }
}
