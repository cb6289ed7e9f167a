import type { ItemChangeRecord, ItemDeltasRecord, Codecs } from '../eventlog/codec/avro.ts';
import type { Framing } from '../eventlog/codec/framing.ts';
import type { LogRecord, OutgoingRecord } from '../eventlog/port.ts';
import { BadInputError } from '../errors/index.ts';
import type { ItemDeltaMessage, SourcedChange } from '../stages/item-deltas/index.ts';
import type { ItemDelta } from '../store/port.ts';

/**
 * `ItemDeltaMessage` ↔ records of the `item-deltas` topic (`schemas/item-delta.avsc`), keyed by item id so that
 * the topic's partitioning gives every item one writer. Vectors travel as Avro `bytes` holding float32
 * little-endian values, exactly the `Float32Array` (and an order of magnitude cheaper to encode and decode than
 * Avro float arrays, which cost more than the learning itself in the item-writes bench).
 */

export async function itemDeltasRecord(
  message: ItemDeltaMessage,
  topic: string,
  codecs: Codecs,
  framing: Framing,
): Promise<OutgoingRecord> {
  const framed = await framing.encode(codecs.itemDeltas, toRecord(message), topic);
  return { topic, key: message.itemId, value: framed.value, headers: framed.headers };
}

/**
 * Decodes one record; throws `BadInputError` for bytes that are not one (`UNDECODABLE`, `UNKNOWN_SCHEMA`) or
 * a key that is not its item id (`KEY_MISMATCH`: such a record sits in another item's partition, so its item
 * could get a second writer) or a vector whose byte length is not a whole number of float32s.
 */
export async function decodeItemDeltas(
  record: LogRecord,
  codecs: Codecs,
  framing: Framing,
): Promise<ItemDeltaMessage> {
  const value = await framing.decode(codecs.itemDeltas, record.value, record.headers);
  if (record.key !== null && record.key.toString('utf8') !== value.itemId) {
    throw new BadInputError('KEY_MISMATCH', 'item-deltas record key is not its itemId');
  }
  return fromRecord(value);
}

export function toRecord(message: ItemDeltaMessage): ItemDeltasRecord {
  return {
    itemId: message.itemId,
    sourceTopic: message.sourceTopic,
    sourcePartition: message.sourcePartition,
    changes: message.changes.map(({ sourceOffset, delta }) => ({
      sourceOffset,
      atMs: delta.atMs,
      initialVector: delta.initialVector ? float32Bytes(delta.initialVector) : null,
      vectorDelta: delta.vectorDelta ? float32Bytes(delta.vectorDelta) : null,
      seenBy: delta.seenBy ? { userId: delta.seenBy.id, atMs: delta.seenBy.atMs } : null,
      interactions: delta.interactions ?? 0,
      cooccurrence: delta.cooccurrence ? Object.fromEntries(delta.cooccurrence) : {},
    })),
  };
}

export function fromRecord(record: ItemDeltasRecord): ItemDeltaMessage {
  return {
    itemId: record.itemId,
    sourceTopic: record.sourceTopic,
    sourcePartition: record.sourcePartition,
    changes: record.changes.map((c) => fromChange(record.itemId, c)),
  };
}

function fromChange(itemId: string, c: ItemChangeRecord): SourcedChange {
  const cooccurrence = Object.entries(c.cooccurrence);
  const delta: ItemDelta = {
    itemId,
    atMs: c.atMs,
    ...(c.initialVector ? { initialVector: float32s(c.initialVector, 'initialVector') } : {}),
    ...(c.vectorDelta ? { vectorDelta: float32s(c.vectorDelta, 'vectorDelta') } : {}),
    ...(c.seenBy ? { seenBy: { id: c.seenBy.userId, atMs: c.seenBy.atMs } } : {}),
    ...(c.interactions !== 0 ? { interactions: c.interactions } : {}),
    ...(cooccurrence.length ? { cooccurrence: new Map(cooccurrence) } : {}),
  };
  return { sourceOffset: c.sourceOffset, delta };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function float32Bytes(vector: Float32Array): Buffer {
  const bytes = Buffer.alloc(vector.length * 4);
  if (LITTLE_ENDIAN) bytes.set(new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength));
  else vector.forEach((x, i) => bytes.writeFloatLE(x, i * 4));
  return bytes;
}

function float32s(bytes: Buffer, what: string): Float32Array {
  if (bytes.length % 4 !== 0)
    throw new BadInputError(
      'UNDECODABLE',
      `${what} has ${bytes.length} bytes, not a whole number of float32s`,
    );
  const vector = new Float32Array(bytes.length / 4);
  if (LITTLE_ENDIAN) new Uint8Array(vector.buffer).set(bytes);
  else for (let i = 0; i < vector.length; i++) vector[i] = bytes.readFloatLE(i * 4);
  return vector;
}
