/**
 * The error taxonomy. Every error that crosses a module boundary is one of three families:
 *
 * - `TransientError`: the same call may succeed later (network blip, broker leader change, store busy).
 *   Retried with backoff and jitter by `withRetry`.
 * - `BadInputError`: the input itself is wrong. The record goes to the DLQ with `code` and the stream goes on.
 * - `FatalError`: configuration, authentication, corrupted state. Stop loudly.
 *
 * Vendor errors are classified inside their adapter; an error nobody classified counts as not retriable.
 */

export type ErrorFamily = 'transient' | 'bad-input' | 'fatal';

export abstract class StarstreamError extends Error {
  abstract readonly family: ErrorFamily;
  /** Stable, machine-readable identifier: `SNAKE_CASE`, safe as a metric label. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  get retriable(): boolean {
    return this.family === 'transient';
  }
}

export class TransientError extends StarstreamError {
  readonly family = 'transient' as const;
}

export class BadInputError extends StarstreamError {
  readonly family = 'bad-input' as const;
}

export class FatalError extends StarstreamError {
  readonly family = 'fatal' as const;
}

/** Config that fails validation; `field` is the dotted path of the first bad field. */
export class ConfigError extends FatalError {
  constructor(
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('CONFIG_INVALID', `config ${field}: ${message}`, options);
  }
}

export function isRetriable(err: unknown): boolean {
  return err instanceof StarstreamError && err.retriable;
}

/** Short code for logs and metric labels, also for errors that were never classified. */
export function errorCode(err: unknown): string {
  if (err instanceof StarstreamError) return err.code;
  return 'UNCLASSIFIED';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
