import { EVENT_TYPES, type Interaction } from '../../domain/events.ts';
import { BadInputError } from '../../errors/index.ts';

export interface ValidationLimits {
  /** Wall clock used for the range checks. */
  readonly nowMs: number;
  /** 0 = no lower bound beyond "positive". */
  readonly maxEventAgeMs: number;
  readonly maxFutureSkewMs: number;
}

const MAX_ID_LENGTH = 256;
const MAX_CONTEXT_ENTRIES = 64;
const MAX_CONTEXT_VALUE_LENGTH = 1_024;
// Control characters in ids break logs, keys and the rendered prompt; they never occur in real ids.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Checks the meaning of a decoded interaction; throws `BadInputError` with a stable code for the DLQ. */
export function validateInteraction(event: Interaction, limits: ValidationLimits): Interaction {
  checkId('eventId', event.eventId);
  checkId('userId', event.userId);
  checkId('itemId', event.itemId);
  if (!(EVENT_TYPES as readonly string[]).includes(event.type)) {
    throw new BadInputError('UNKNOWN_EVENT_TYPE', `unknown event type "${String(event.type)}"`);
  }
  if (event.value !== null && !Number.isFinite(event.value)) {
    throw new BadInputError('NON_FINITE_VALUE', `value is ${String(event.value)}`);
  }
  checkTimestamp(event.timestampMs, limits);
  const contextSize = Object.keys(event.context).length;
  if (contextSize > MAX_CONTEXT_ENTRIES) {
    throw new BadInputError('CONTEXT_TOO_LARGE', `context has ${contextSize} entries (max ${MAX_CONTEXT_ENTRIES})`);
  }
  for (const value of Object.values(event.context)) {
    if (value.length > MAX_CONTEXT_VALUE_LENGTH) {
      throw new BadInputError('CONTEXT_TOO_LARGE', `a context value has ${value.length} characters`);
    }
  }
  return event;
}

function checkId(field: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new BadInputError('MISSING_ID', `${field} is empty`);
  }
  if (value.length > MAX_ID_LENGTH) {
    throw new BadInputError('BAD_ID', `${field} is ${value.length} characters long (max ${MAX_ID_LENGTH})`);
  }
  if (CONTROL_CHARS.test(value)) throw new BadInputError('BAD_ID', `${field} contains control characters`);
}

function checkTimestamp(ts: number, limits: ValidationLimits): void {
  if (!Number.isSafeInteger(ts) || ts <= 0) {
    throw new BadInputError('TIMESTAMP_OUT_OF_RANGE', `timestamp ${ts} is not a positive integer`);
  }
  if (ts > limits.nowMs + limits.maxFutureSkewMs) {
    throw new BadInputError('TIMESTAMP_OUT_OF_RANGE', `timestamp ${ts} is in the future`);
  }
  if (limits.maxEventAgeMs > 0 && ts < limits.nowMs - limits.maxEventAgeMs) {
    throw new BadInputError('TIMESTAMP_OUT_OF_RANGE', `timestamp ${ts} is older than the allowed age`);
  }
}
