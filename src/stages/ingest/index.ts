import type { DeadLetter, Interaction, SourcePosition } from '../../domain/events.ts';
import { BadInputError, errorMessage } from '../../errors/index.ts';
import type { LogRecord } from '../../eventlog/port.ts';
import { validateInteraction, type ValidationLimits } from './validate.ts';

/**
 * Ingest: bytes from the log → valid `Interaction`s, and a `DeadLetter` for every record that is not one.
 * Never throws for bad input; anything else (a bug) is turned into a dead letter too, with code `INTERNAL`,
 * so that one poisoned record cannot stop the stream.
 */

/** Bytes → interaction; throws `BadInputError` for bytes that are not one. Async: a schema registry may be asked. */
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
      deadLetters.push(toDeadLetter(record, err, limits.nowMs));
    }
  }
  return { interactions, sources, deadLetters };
}

/**
 * Partition ownership relies on key = user id; a record keyed otherwise would be processed by the wrong owner.
 * Compared as bytes: keys that are not UTF-8 (`ff`, `fe`) all decode to U+FFFD, so as text they would match
 * one user id while the log partitions them apart.
 */
function checkKey(record: LogRecord, event: Interaction): void {
  if (record.key !== null && !record.key.equals(Buffer.from(event.userId, 'utf8'))) {
    throw new BadInputError('KEY_MISMATCH', 'record key is not the event\'s userId');
  }
}

export function toDeadLetter(record: LogRecord, err: unknown, nowMs: number): DeadLetter {
  const code = err instanceof BadInputError ? err.code : 'INTERNAL';
  return {
    code,
    reason: errorMessage(err),
    source: { topic: record.topic, partition: record.partition, offset: record.offset },
    key: record.key,
    payload: record.value,
    failedAtMs: nowMs,
  };
}
