import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadInputError } from '../../../src/errors/index.ts';
import type { LearnedDeltas } from '../../../src/stages/item-deltas/index.ts';
import { decodeOutbox, encodeOutbox, outboxEntry } from '../../../src/stages/item-deltas/outbox.ts';

describe('user outbox', () => {
  const entries: LearnedDeltas[] = [
    {
      source: { topic: 'interactions', partition: 3, offset: '9007199254740993' },
      deltas: [
        {
          itemId: 'i.1/ü',
          atMs: 1_700_000_000_123,
          initialVector: Float32Array.from([0.1, -2.5e-8, 3, Math.fround(1 / 3)]),
          vectorDelta: Float32Array.from([1e-30, 0, -0, 7]),
          seenBy: { id: 'u1', atMs: 1_700_000_000_123 },
          interactions: 1,
          cooccurrence: new Map([['i2', 2], ['i"3', 1]]),
        },
        { itemId: 'neg', atMs: 5, vectorDelta: Float32Array.from([0.5, 0.25, 0, 1]) },
      ],
    },
    { source: { topic: 'interactions', partition: 3, offset: '12' }, deltas: [] },
  ];

  it('round-trips every field exactly: float32 vectors bit for bit, offsets as strings, co-occurrence maps', () => {
    const decoded = decodeOutbox(encodeOutbox(entries));
    assert.deepEqual(decoded, entries);
    assert.ok(Object.is(decoded[0]!.deltas[0]!.vectorDelta![2], -0));
  });

  it('finds the entry of one source position', () => {
    const decoded = decodeOutbox(encodeOutbox(entries));
    assert.equal(outboxEntry(decoded, { topic: 'interactions', partition: 3, offset: '12' }), decoded[1]);
    assert.equal(outboxEntry(decoded, { topic: 'interactions', partition: 4, offset: '12' }), undefined);
  });

  it('refuses text it did not write with OUTBOX_INVALID', () => {
    for (const bad of ['not json', '{"v":2,"events":[]}', '{"v":1,"events":[{"topic":"t","partition":0,"offset":"1","deltas":[{"i":"x","t":0,"vd":"AAA"}]}]}']) {
      assert.throws(() => decodeOutbox(bad), (err: unknown) => err instanceof BadInputError && err.code === 'OUTBOX_INVALID', bad);
    }
  });
});
