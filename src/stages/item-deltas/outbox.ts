import { BadInputError } from '../../errors/index.ts';
import type { SourcePosition } from '../../domain/events.ts';
import type { ItemDelta } from '../../store/port.ts';
import type { LearnedDeltas } from './index.ts';

/**
 * A user's outbox (`UserProfile.outbox`, routed item writes): the item deltas that the user's events in one
 * batch made, written with the user's state so they outlive a crash between that write and their send.
 *
 * Why it is needed: the processor writes its users durably (with the positions they hold) before the runner
 * sends the batch's deltas to the item-deltas topic. A process killed between the two leaves users that hold
 * events whose deltas never reached the log. The redelivered events are not learned again (their users hold
 * them) and could not make the same deltas again (the users have moved on), so they send what they made the
 * first time, read back from the outbox. The writer drops whatever of it did arrive (`ItemDeltaWriter`).
 *
 * What it holds: every delta the user's write sends, new and re-sent, so a later crash loses nothing either.
 * A user written again replaces it; by then the batch before was published (a partition's batches are
 * handled one after the other, and a failed one is redelivered before the next), so nothing it held is still
 * owed. Text: JSON, vectors as base64 float32 in the platform's byte order (the same deployment reads it
 * back), co-occurrence as pairs.
 */

const VERSION = 1;

interface EncodedDelta {
  readonly i: string;
  readonly t: number;
  readonly iv?: string;
  readonly vd?: string;
  readonly s?: readonly [string, number];
  readonly n?: number;
  readonly c?: readonly (readonly [string, number])[];
}

interface EncodedEvent {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly deltas: readonly EncodedDelta[];
}

export function encodeOutbox(entries: readonly LearnedDeltas[]): string {
  const events: EncodedEvent[] = entries.map(({ source, deltas }) => ({
    topic: source.topic,
    partition: source.partition,
    offset: source.offset,
    deltas: deltas.map(encodeDelta),
  }));
  return JSON.stringify({ v: VERSION, events });
}

/** Throws `BadInputError` (`OUTBOX_INVALID`) for text that is not an outbox this version wrote. */
export function decodeOutbox(text: string): LearnedDeltas[] {
  let parsed: { v?: unknown; events?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch (cause) {
    throw new BadInputError('OUTBOX_INVALID', 'outbox is not JSON', { cause });
  }
  if (parsed.v !== VERSION || !Array.isArray(parsed.events)) throw new BadInputError('OUTBOX_INVALID', `outbox version ${String(parsed.v)}, expected ${VERSION}`);
  return (parsed.events as EncodedEvent[]).map((e) => ({
    source: { topic: e.topic, partition: e.partition, offset: e.offset },
    deltas: e.deltas.map(decodeDelta),
  }));
}

/** The entry of `source` in a decoded outbox, if it holds one. */
export function outboxEntry(entries: readonly LearnedDeltas[], source: SourcePosition): LearnedDeltas | undefined {
  return entries.find((e) => e.source.offset === source.offset && e.source.partition === source.partition && e.source.topic === source.topic);
}

function encodeDelta(d: ItemDelta): EncodedDelta {
  return {
    i: d.itemId,
    t: d.atMs,
    ...(d.initialVector ? { iv: base64(d.initialVector) } : {}),
    ...(d.vectorDelta ? { vd: base64(d.vectorDelta) } : {}),
    ...(d.seenBy ? { s: [d.seenBy.id, d.seenBy.atMs] as const } : {}),
    ...(d.interactions !== undefined ? { n: d.interactions } : {}),
    ...(d.cooccurrence ? { c: [...d.cooccurrence] } : {}),
  };
}

function decodeDelta(e: EncodedDelta): ItemDelta {
  return {
    itemId: e.i,
    atMs: e.t,
    ...(e.iv !== undefined ? { initialVector: floats(e.iv) } : {}),
    ...(e.vd !== undefined ? { vectorDelta: floats(e.vd) } : {}),
    ...(e.s ? { seenBy: { id: e.s[0], atMs: e.s[1] } } : {}),
    ...(e.n !== undefined ? { interactions: e.n } : {}),
    ...(e.c ? { cooccurrence: new Map(e.c) } : {}),
  };
}

function base64(vector: Float32Array): string {
  return Buffer.from(Float32Array.from(vector).buffer).toString('base64');
}

function floats(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length % 4 !== 0) throw new BadInputError('OUTBOX_INVALID', `a vector of ${bytes.length} bytes is not float32s`);
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}
