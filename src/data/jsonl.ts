import { openForReading } from './files.ts';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EVENT_TYPES, type EventType, type Interaction } from '../domain/events.ts';

/**
 * Interactions as JSON lines: one `Interaction` object per line, the file format of `starstream replay` and
 * of recorded streams. Reading streams line by line (memory is one line, whatever the file size) and never
 * throws on bad content: a line that is not a valid interaction comes back as a `malformed` entry with its
 * 1-based line number, its original text and the reason, so the caller can send it to the DLQ and go on.
 *
 * Accepted per line: a JSON object with `eventId`, `userId`, `itemId` (non-empty strings), `type` (one of
 * {@link EVENT_TYPES}), `timestampMs` (integer ≥ 0), optional `value` (finite number or null; missing means
 * null) and optional `context` (object of strings; missing means `{}`). Unknown fields are ignored, as an Avro
 * reader ignores fields its schema lacks, so newer writers do not break older readers. Blank lines are
 * skipped (they are separators, not records); a UTF-8 byte-order mark on the first line is ignored.
 */

/** One line of a JSONL file. */
export type JsonlEntry =
  | { readonly kind: 'interaction'; readonly line: number; readonly interaction: Interaction }
  | { readonly kind: 'malformed'; readonly line: number; readonly raw: string; readonly error: string };

/**
 * Reads a JSONL file (path) or stream lazily. A path that cannot be opened throws `FatalError`
 * `JSONL_UNREADABLE`; everything inside the file comes back as entries.
 */
export async function* readInteractionsJsonl(
  source: string | Readable,
): AsyncGenerator<JsonlEntry, void, undefined> {
  const input = typeof source === 'string' ? await openFile(source) : source;
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      const raw = line === 1 && text.startsWith('\uFEFF') ? text.slice(1) : text;
      if (raw.trim() === '') continue;
      yield parseInteractionLine(raw, line);
    }
  } finally {
    lines.close();
    if (typeof source === 'string') input.destroy();
  }
}

/**
 * Writes interactions as JSONL (to a path, created or truncated, or to a stream, which is ended afterwards),
 * honouring backpressure. Resolves with the number of lines written.
 */
export async function writeInteractionsJsonl(
  destination: string | Writable,
  interactions: Iterable<Interaction> | AsyncIterable<Interaction>,
): Promise<number> {
  let count = 0;
  async function* lines(): AsyncGenerator<string> {
    for await (const interaction of interactions) {
      count++;
      yield `${formatInteraction(interaction)}\n`;
    }
  }
  const output = typeof destination === 'string' ? createWriteStream(destination) : destination;
  await pipeline(Readable.from(lines()), output);
  return count;
}

/** One interaction as one JSON line (no newline), fields in schema order so files diff well. */
export function formatInteraction(interaction: Interaction): string {
  const { eventId, userId, itemId, type, value, timestampMs, context } = interaction;
  return JSON.stringify({ eventId, userId, itemId, type, value, timestampMs, context });
}

/** Parses one line; never throws. */
export function parseInteractionLine(raw: string, line: number): JsonlEntry {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    return { kind: 'malformed', line, raw, error: `invalid JSON: ${(err as Error).message}` };
  }
  const result = toInteraction(parsed);
  return typeof result === 'string'
    ? { kind: 'malformed', line, raw, error: result }
    : { kind: 'interaction', line, interaction: result };
}

/** The interaction in `value`, or why it is not one. */
function toInteraction(value: unknown): Interaction | string {
  if (!isRecord(value)) return 'not a JSON object';
  const { eventId, userId, itemId, type, timestampMs } = value;
  for (const [name, field] of [
    ['eventId', eventId],
    ['userId', userId],
    ['itemId', itemId],
  ] as const) {
    if (typeof field !== 'string' || field === '') return `${name} must be a non-empty string`;
  }
  if (!isEventType(type)) return `type must be one of ${EVENT_TYPES.join(', ')}`;
  if (!Number.isSafeInteger(timestampMs) || (timestampMs as number) < 0) {
    return 'timestampMs must be an integer >= 0';
  }
  const amount = value.value ?? null;
  if (amount !== null && (typeof amount !== 'number' || !Number.isFinite(amount))) {
    return 'value must be a finite number or null';
  }
  const context = value.context ?? {};
  if (!isRecord(context) || !Object.values(context).every((v) => typeof v === 'string')) {
    return 'context must be an object of strings';
  }
  return {
    eventId: eventId as string,
    userId: userId as string,
    itemId: itemId as string,
    type,
    value: amount,
    timestampMs: timestampMs as number,
    context: context as Record<string, string>,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}

function openFile(path: string): Promise<Readable> {
  return openForReading(path, 'JSONL_UNREADABLE');
}
