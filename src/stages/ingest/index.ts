import type { DeadLetter, Interaction } from '../../domain/events.ts';
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
  readonly deadLetters: DeadLetter[];
}

export async function ingest(
  records: readonly LogRecord[],
  decode: InteractionDecoder,
  limits: ValidationLimits,
): Promise<IngestResult> {
  const interactions: Interaction[] = [];
  const deadLetters: DeadLetter[] = [];
  for (const record of records) {
    try {
      const event = validateInteraction(await decode(record), limits);
      checkKey(record, event);
      interactions.push(event);
    } catch (err) {
      deadLetters.push(toDeadLetter(record, err, limits.nowMs));
    }
  }
  return { interactions, deadLetters };
}

/** Partition ownership relies on key = user id; a record keyed otherwise would be processed by the wrong owner. */
function checkKey(record: LogRecord, event: Interaction): void {
  if (record.key !== null && record.key.toString('utf8') !== event.userId) {
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
