import type { DeadLetter, Interaction, SourcePosition } from '../../domain/events.ts';
import { BadInputError, FatalError, StarstreamError, errorMessage } from '../../errors/index.ts';
import type { LogRecord } from '../../eventlog/port.ts';
import { validateInteraction, type ValidationLimits } from './validate.ts';

/**
 * Ingest: bytes from the log → valid `Interaction`s, and a `DeadLetter` for every record that is not one.
 *
 * Only `BadInputError` is dead-lettered: the record itself is wrong, and retrying cannot change that. Every
 * other error rejects the whole batch, because dead-lettering it would commit valid events as bad:
 * - `TransientError` (a schema registry answering 5xx, a timeout) propagates as is; the consumer redelivers
 *   the batch from the committed offset with backoff.
 * - `FatalError` (refused registry credentials, an incompatible schema) propagates as is; the consumer stops
 *   and the process exits non-zero.
 * - An unclassified error is a bug, not a property of the record: decoders classify everything bytes can do
 *   to them (the Avro codecs and both framings turn any decoding failure into `UNDECODABLE` or
 *   `UNKNOWN_SCHEMA`). Unknown means not retriable (`src/errors`), so it becomes a `FatalError`
 *   `INGEST_UNCLASSIFIED` with the original as its cause: the stream stops loudly rather than retrying forever
 *   or sending every following event to the DLQ.
 */

/**
 * Bytes → interaction. Must throw `BadInputError` for any bytes that are not one (garbage included), and
 * `TransientError`/`FatalError` for failures of what it depends on. Async: a schema registry may be asked.
 */
export type InteractionDecoder = (record: LogRecord) => Interaction | Promise<Interaction>;

export interface IngestResult {
  readonly interactions: Interaction[];
  /** Where each interaction came from, aligned with `interactions` (routed item deltas carry it as their id). */
  readonly sources: SourcePosition[];
  readonly deadLetters: DeadLetter[];
}

export async function ingest(
  records: readonly LogRecord[],
  decode: InteractionDecoder,
  limits: ValidationLimits,
): Promise<IngestResult> {
  const interactions: Interaction[] = [];
  const sources: SourcePosition[] = [];
  const deadLetters: DeadLetter[] = [];
  for (const record of records) {
    try {
      const event = validateInteraction(await decode(record), limits);
      checkKey(record, event);
      interactions.push(event);
      sources.push({ topic: record.topic, partition: record.partition, offset: record.offset });
    } catch (err) {
      if (err instanceof BadInputError) deadLetters.push(toDeadLetter(record, err, limits.nowMs));
      else throw escalate(err, record);
    }
  }
  return { interactions, sources, deadLetters };
}

/**
 * For a decoding failure that is not bad input: a classified error goes on unchanged (its family decides
 * retry or stop); an unclassified one becomes fatal. Every consumer that dead-letters uses it.
 */
export function escalate(err: unknown, record: LogRecord): StarstreamError {
  if (err instanceof StarstreamError) return err;
  return new FatalError(
    'INGEST_UNCLASSIFIED',
    `unclassified error ingesting ${record.topic}/${record.partition}@${record.offset}: ${errorMessage(err)}`,
    { cause: err },
  );
}

/**
 * Partition ownership relies on key = user id; a record keyed otherwise would be processed by the wrong owner.
 * A record without a key is no exception: the producer's partitioner spread it round-robin, so the partition
 * it sits on says nothing about who owns its user (`KEY_MISSING`).
 * Compared as bytes: keys that are not UTF-8 (`ff`, `fe`) all decode to U+FFFD, so as text they would match
 * one user id while the log partitions them apart.
 */
function checkKey(record: LogRecord, event: Interaction): void {
  if (record.key === null) {
    throw new BadInputError('KEY_MISSING', 'record has no key; interactions must be keyed by userId');
  }
  if (!record.key.equals(Buffer.from(event.userId, 'utf8'))) {
    throw new BadInputError('KEY_MISMATCH', 'record key is not the event\'s userId');
  }
}

/** The dead letter of a record that is bad input: original key, bytes and headers, the code and the reason. */
export function toDeadLetter(record: LogRecord, err: BadInputError, nowMs: number): DeadLetter {
  return {
    code: err.code,
    reason: err.message,
    source: { topic: record.topic, partition: record.partition, offset: record.offset },
    key: record.key,
    payload: record.value,
    payloadNull: record.valueIsNull === true,
    headers: record.headers,
    failedAtMs: nowMs,
  };
}
