import type { DeadLetter, Recommendation } from '../domain/events.ts';
import type { TeacherCase } from '../domain/teacher.ts';
import type { Codecs } from '../eventlog/codec/avro.ts';
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

/**
 * The dead letter's value is the `DeadLetter` envelope (`schemas/dead-letter.avsc`): the original key and
 * bytes, unchanged, with the reason and source position, so a fixed record can be replayed from it alone.
 * Reason, code and source are mirrored in headers so tools can route and count without decoding.
 */
export async function deadLetterRecord(
  letter: DeadLetter,
  topic: string,
  codecs: Codecs,
  framing: Framing,
): Promise<OutgoingRecord> {
  const framed = await framing.encode(codecs.deadLetter, codecs.deadLetterValue(letter), topic);
  return {
    topic,
    key: letter.key ? Buffer.from(letter.key) : null,
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
