import type { Interaction, Item } from '../domain/events.ts';
import type { Codecs } from '../eventlog/codec/avro.ts';
import type { Framing } from '../eventlog/codec/framing.ts';
import type { EventLog, OutgoingRecord } from '../eventlog/port.ts';

/** Loads interactions and items into the log, as a producer of the real input topics would. */

const CHUNK = 500;

/**
 * Lets timers and I/O run between chunks. An in-process log acknowledges sends without touching the event
 * loop, so a producer that never waits on real I/O would otherwise starve the metrics server and timers.
 */
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Every `n`-th record replaced by a malformed one of each kind; 0 = none. For demos and tests of the DLQ. */
export interface MalformedMix {
  readonly garbageEvery: number;
  readonly nonFiniteEvery: number;
}

export const NO_MALFORMED: MalformedMix = { garbageEvery: 0, nonFiniteEvery: 0 };

export async function produceItems(log: EventLog, topic: string, items: readonly Item[], codecs: Codecs, framing: Framing): Promise<void> {
  const producer = log.producer();
  try {
    for (let i = 0; i < items.length; i += CHUNK) {
      const records: OutgoingRecord[] = [];
      for (const item of items.slice(i, i + CHUNK)) {
        const framed = await framing.encode(codecs.item, item, topic);
        records.push({ topic, key: item.itemId, value: framed.value, headers: framed.headers });
      }
      await producer.send(records);
      await yieldToEventLoop();
    }
  } finally {
    await producer.close();
  }
}

/** Sends `events` keyed by user, in chunks; resolves with how many records were sent. */
export async function produceInteractions(
  log: EventLog,
  topic: string,
  events: Iterable<Interaction>,
  codecs: Codecs,
  framing: Framing,
  malformed: MalformedMix,
): Promise<number> {
  const producer = log.producer();
  let sent = 0;
  let chunk: OutgoingRecord[] = [];
  try {
    for (const event of events) {
      sent++;
      chunk.push(await recordFor(event, sent, topic, codecs, framing, malformed));
      if (chunk.length >= CHUNK) {
        await producer.send(chunk);
        chunk = [];
        await yieldToEventLoop();
      }
    }
    if (chunk.length) await producer.send(chunk);
    return sent;
  } finally {
    await producer.close();
  }
}

async function recordFor(
  event: Interaction,
  seq: number,
  topic: string,
  codecs: Codecs,
  framing: Framing,
  malformed: MalformedMix,
): Promise<OutgoingRecord> {
  if (malformed.garbageEvery > 0 && seq % malformed.garbageEvery === 0) {
    return { topic, key: event.userId, value: Buffer.from([0xde, 0xad, 0xbe, 0xef, seq & 0xff]) };
  }
  const value = malformed.nonFiniteEvery > 0 && seq % malformed.nonFiniteEvery === 0 ? { ...event, value: Number.NaN } : event;
  const framed = await framing.encode(codecs.interaction, value, topic);
  return { topic, key: event.userId, value: framed.value, headers: framed.headers };
}
