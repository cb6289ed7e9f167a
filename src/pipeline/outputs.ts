import type { DeadLetter, Recommendation } from '../domain/events.ts';
import type { TeacherCase } from '../domain/teacher.ts';
import type { Codecs, DeadLetterRecord } from '../eventlog/codec/avro.ts';
import type { Framing } from '../eventlog/codec/framing.ts';
import type { OutgoingRecord } from '../eventlog/port.ts';

/**
 * Turns the processor's outputs into log records: recommendations and teacher cases keyed by user, DLQ
 * records with headers.
 */

export const EVENT_ID_HEADER = 'starstream-event-id';

/** Headers a dead letter carries, so tools can route and count it without decoding the body. */
export const DLQ_HEADERS = {
  reason: 'starstream-dlq-reason',
  code: 'starstream-dlq-code',
  topic: 'starstream-dlq-source-topic',
  partition: 'starstream-dlq-source-partition',
  offset: 'starstream-dlq-source-offset',
} as const;

export async function recommendationRecord(
  rec: Recommendation,
  topic: string,
  codecs: Codecs,
  framing: Framing,
): Promise<OutgoingRecord> {
  const framed = await framing.encode(codecs.recommendation, rec, topic);
  return { topic, key: rec.userId, value: framed.value, headers: { ...framed.headers, [EVENT_ID_HEADER]: rec.eventId } };
}

/** A sampled case for the teacher-cases topic, keyed by user like the interactions it came from. */
export async function teacherCaseRecord(
  teacherCase: TeacherCase,
  topic: string,
  codecs: Codecs,
  framing: Framing,
): Promise<OutgoingRecord> {
  const framed = await framing.encode(codecs.teacherCase, teacherCase, topic);
  return {
    topic,
    key: teacherCase.user.userId,
    value: framed.value,
    headers: { ...framed.headers, [EVENT_ID_HEADER]: teacherCase.eventId },
  };
}

/** `eventLog.topics.deadLetterMaxBytes`'s default: half of Kafka's default `max.message.bytes`. */
export const DEFAULT_DEAD_LETTER_MAX_BYTES = 524_288;
/** The envelope's `reason` bound; error messages may quote input, and the record must stay bounded. */
const MAX_REASON_CHARS = 4_000;

/**
 * The dead letter's value is the `DeadLetter` envelope (`schemas/dead-letter.avsc`): the original key, headers
 * and bytes, unchanged, with the reason and source position, so a fixed record can be replayed from it alone.
 * Reason, code and source are mirrored in headers so tools can route and count without decoding.
 *
 * `maxBytes` bounds the original bytes the letter carries (see `boundDeadLetter`), so that no input, however
 * large, makes a dead letter the DLQ topic refuses: that failure would fail the batch and redeliver it forever.
 */
export async function deadLetterRecord(
  letter: DeadLetter,
  topic: string,
  codecs: Codecs,
  framing: Framing,
  maxBytes: number = DEFAULT_DEAD_LETTER_MAX_BYTES,
): Promise<OutgoingRecord> {
  const envelope = boundDeadLetter(codecs.deadLetterValue(letter), maxBytes);
  envelope.reason = envelope.reason.slice(0, MAX_REASON_CHARS);
  const framed = await framing.encode(codecs.deadLetter, envelope, topic);
  return {
    topic,
    key: envelope.key,
    value: framed.value,
    headers: {
      ...framed.headers,
      [DLQ_HEADERS.reason]: letter.reason.slice(0, 1_000),
      [DLQ_HEADERS.code]: letter.code,
      [DLQ_HEADERS.topic]: letter.source.topic,
      [DLQ_HEADERS.partition]: String(letter.source.partition),
      [DLQ_HEADERS.offset]: letter.source.offset,
    },
  };
}

/**
 * Cuts an envelope down to at most `maxBytes` of original bytes (key + header names and values + value),
 * filled in that order: the key (a prefix if it alone is over the bound), then whole headers in their order
 * while they fit, then a prefix of the value with what is left. Anything cut sets `truncated`;
 * `payloadSize` and `payloadSha256` still describe the whole original value, so the record can be matched
 * against the producer's copy. An envelope within the bound is returned unchanged (a copy).
 */
export function boundDeadLetter(envelope: DeadLetterRecord, maxBytes: number): DeadLetterRecord {
  const headerBytes = Object.entries(envelope.headers).reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + value.length, 0);
  const total = (envelope.key?.length ?? 0) + headerBytes + envelope.payload.length;
  if (total <= maxBytes) return { ...envelope };
  let left = maxBytes;
  const key = envelope.key === null ? null : envelope.key.subarray(0, Math.min(envelope.key.length, left));
  left -= key?.length ?? 0;
  const headers: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(envelope.headers)) {
    const size = Buffer.byteLength(name) + value.length;
    if (size > left) continue;
    headers[name] = value;
    left -= size;
  }
  return { ...envelope, key, headers, payload: envelope.payload.subarray(0, left), truncated: true };
}
