import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createCodecs } from '../../src/eventlog/codec/avro.ts';
import { headerFraming, SCHEMA_HEADER } from '../../src/eventlog/codec/framing.ts';
import type { LogRecord, OutgoingRecord } from '../../src/eventlog/port.ts';
import { BadInputError } from '../../src/errors/index.ts';
import { decodeItemDeltas, itemDeltasRecord } from '../../src/pipeline/item-delta-records.ts';
import type { ItemDeltaMessage } from '../../src/stages/item-deltas/index.ts';

const codecs = createCodecs();
const framing = headerFraming();
const T0 = 1_700_000_000_000;

const message: ItemDeltaMessage = {
  itemId: 'item-7',
  sourceTopic: 'starstream.interactions',
  sourcePartition: 2,
  changes: [
    {
      sourceOffset: '12345678901234567',
      delta: {
        itemId: 'item-7',
        atMs: T0,
        initialVector: Float32Array.from([0.1, -0.2, 0.3]),
        vectorDelta: Float32Array.from([1e-7, 0, -3.5]),
        seenBy: { id: 'u1', atMs: T0 },
        interactions: 1,
        cooccurrence: new Map([
          ['item-1', 1],
          ['item-2', 2],
        ]),
      },
    },
    {
      sourceOffset: '12345678901234568',
      delta: { itemId: 'item-7', atMs: T0 + 5, vectorDelta: Float32Array.from([0.25, 0.5, 1]) },
    },
  ],
};

function asConsumed(record: OutgoingRecord, key: string | null = record.key as string): LogRecord {
  return {
    topic: record.topic,
    partition: 0,
    offset: '0',
    key: key === null ? null : Buffer.from(key),
    value: record.value,
    headers: Object.fromEntries(Object.entries(record.headers ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
    timestampMs: Date.now(),
  };
}

describe('item-deltas records', () => {
  it('are keyed by item id, carry the schema header, and decode to the same changes (vectors exactly)', async () => {
    const record = await itemDeltasRecord(message, 'starstream.item-deltas', codecs, framing);
    assert.equal(record.key, 'item-7');
    assert.match(String(record.headers?.[SCHEMA_HEADER]), /^starstream\.v1\.ItemDeltas@/);
    const decoded = await decodeItemDeltas(asConsumed(record), codecs, framing);
    assert.equal(decoded.itemId, message.itemId);
    assert.equal(decoded.sourceTopic, message.sourceTopic);
    assert.equal(decoded.sourcePartition, 2);
    assert.deepEqual(decoded.changes, message.changes);
  });

  it("a record whose key is not its item id is bad input (it sits in another item's partition)", async () => {
    const record = await itemDeltasRecord(message, 'starstream.item-deltas', codecs, framing);
    await assert.rejects(
      decodeItemDeltas(asConsumed(record, 'item-8'), codecs, framing),
      (err: unknown) => err instanceof BadInputError && err.code === 'KEY_MISMATCH',
    );
    await assert.rejects(
      decodeItemDeltas({ ...asConsumed(record), value: Buffer.from([1, 2, 3]) }, codecs, framing),
      (err: unknown) => err instanceof BadInputError,
    );
  });
});
