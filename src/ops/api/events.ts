import { EVENT_TYPES, type DeadLetter, type Interaction } from '../../domain/events.ts';
import { BadInputError } from '../../errors/index.ts';
import type { Codecs } from '../../eventlog/codec/avro.ts';
import type { Framing } from '../../eventlog/codec/framing.ts';
import type { EventLog, EventProducer, OutgoingRecord } from '../../eventlog/port.ts';
import { deadLetterRecord } from '../../pipeline/outputs.ts';
import { validateInteraction, type ValidationLimits } from '../../stages/ingest/validate.ts';

/**
 * `POST /v1/events`: interactions sent over HTTP, checked as the pipeline checks what it reads from the log,
 * then produced to the interactions topic (on the embedded log, the process's own pipeline reads them; on
 * Kafka, the real topic). A record that is not one goes to the dead-letter topic like any dead letter and is
 * answered by index, code and message.
 *
 * The checks, in order, are those a record read from Kafka meets:
 * 1. the Avro schema (`schemas/interaction.avsc`), as the codec decodes: a field of the wrong type or
 *    missing without a default is `UNDECODABLE` (`value` and `context` have defaults: null and `{}`);
 *    fields the schema lacks are ignored, as an Avro reader ignores them;
 * 2. `validateInteraction` (`src/stages/ingest/validate.ts`): ids, event type, value, time range, context
 *    size, with the same codes (`MISSING_ID`, `UNKNOWN_EVENT_TYPE`, `TIMESTAMP_OUT_OF_RANGE`, …).
 * The key check of ingest holds by construction: accepted records are keyed by their `userId`.
 */

/** One record's refusal in the answer. */
export interface EventError {
  /** Position in the batch (0 for a single event). */
  readonly index: number;
  readonly code: string;
  readonly message: string;
}

export interface EventsResult {
  readonly accepted: number;
  readonly rejected: number;
  /** One per rejected record, in batch order. */
  readonly errors: readonly EventError[];
}

export type EventIngest = (records: readonly unknown[], requestId: string) => Promise<EventsResult>;

export interface EventIngestDeps {
  readonly log: EventLog;
  readonly topics: { readonly interactions: string; readonly deadLetters: string };
  readonly codecs: Codecs;
  readonly framing: Framing;
  /** The ingest limits now (`nowMs` is read per request). */
  readonly limits: () => ValidationLimits;
  /** `eventLog.topics.deadLetterMaxBytes`. */
  readonly deadLetterMaxBytes: number;
  /** Told the code of every dead letter (the pipeline's DLQ counter). */
  readonly onDeadLetter: (code: string) => void;
}

/** The dead letters' source topic: these records never were on a topic. Partition -1; offset `<request>#<index>`. */
export const HTTP_SOURCE_TOPIC = 'http:/v1/events';

/** Schema problems, said in words per field (the Avro type names mean little to a caller of a JSON API). */
const EXPECTED: Readonly<Record<string, string>> = {
  eventId: 'a string',
  userId: 'a string',
  itemId: 'a string',
  type: `one of ${EVENT_TYPES.join(', ')}`,
  value: 'a number or null',
  timestampMs: 'an integer (epoch milliseconds)',
  context: 'an object of strings',
};

/**
 * One producer for every request, opened on the first; the event log closes it with itself. Accepted events
 * and dead letters are each sent as one batch and acknowledged before the answer.
 */
export function createEventIngest(deps: EventIngestDeps): EventIngest {
  let producer: EventProducer | null = null;
  return async (records, requestId) => {
    producer ??= deps.log.producer();
    const limits = deps.limits();
    const accepted: OutgoingRecord[] = [];
    const letters: OutgoingRecord[] = [];
    const errors: EventError[] = [];
    const codes: string[] = [];
    for (const [index, raw] of records.entries()) {
      try {
        const event = validateInteraction(fromJson(deps.codecs, raw), limits);
        const framed = await deps.framing.encode(deps.codecs.interaction, event, deps.topics.interactions);
        accepted.push({ topic: deps.topics.interactions, key: event.userId, value: framed.value, headers: framed.headers });
      } catch (err) {
        if (!(err instanceof BadInputError)) throw err;
        errors.push({ index, code: err.code, message: err.message });
        codes.push(err.code);
        letters.push(await deadLetterRecord(deadLetter(raw, index, requestId, err, limits.nowMs), deps.topics.deadLetters, deps.codecs, deps.framing, deps.deadLetterMaxBytes));
      }
    }
    if (accepted.length > 0) await producer.send(accepted);
    if (letters.length > 0) {
      await producer.send(letters);
      for (const code of codes) deps.onDeadLetter(code);
    }
    return { accepted: accepted.length, rejected: errors.length, errors };
  };
}

/** A JSON value → an interaction, by the Avro schema; throws `BadInputError` `UNDECODABLE` naming the field. */
export function fromJson(codecs: Codecs, raw: unknown): Interaction {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new BadInputError('UNDECODABLE', `an event is a JSON object, got ${raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw}`);
  }
  const record = raw as Record<string, unknown>;
  // An unknown type string is the ingest check's UNKNOWN_EVENT_TYPE, as a newer enum symbol would be, not a schema failure.
  const typeIsText = typeof record.type === 'string';
  const checked = typeIsText ? { ...record, type: EVENT_TYPES[0] } : record;
  const problems: string[] = [];
  codecs.interaction.type.isValid(checked, {
    errorHook: (path) => {
      const field = path[0] ?? '';
      const value = field === '' ? raw : record[field];
      problems.push(`${field || 'event'} must be ${EXPECTED[field] ?? 'as the schema says'}${value === undefined ? ' (missing)' : ''}`);
    },
  });
  if (problems.length > 0) throw new BadInputError('UNDECODABLE', `not an Interaction: ${[...new Set(problems)].join('; ')}`);
  return {
    eventId: record.eventId as string,
    userId: record.userId as string,
    itemId: record.itemId as string,
    type: record.type as Interaction['type'],
    value: (record.value as number | null | undefined) ?? null,
    timestampMs: record.timestampMs as number,
    context: (record.context as Record<string, string> | undefined) ?? {},
  };
}

function deadLetter(raw: unknown, index: number, requestId: string, err: BadInputError, nowMs: number): DeadLetter {
  const userId = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>).userId : undefined;
  return {
    code: err.code,
    reason: err.message,
    source: { topic: HTTP_SOURCE_TOPIC, partition: -1, offset: `${requestId}#${index}` },
    key: typeof userId === 'string' ? Buffer.from(userId) : null,
    payload: Buffer.from(JSON.stringify(raw) ?? 'null'),
    headers: { 'content-type': Buffer.from('application/json') },
    failedAtMs: nowMs,
  };
}
