import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bloomAdd, bloomHas, createBloom } from '../../src/util/bloom.ts';

describe('bloom filter', () => {
  it('has no false negatives (property, arbitrary strings and sizes)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 256 }),
        fc.array(fc.string({ unit: 'grapheme', maxLength: 40 }), { maxLength: 100 }),
        (bytes, keys) => {
          const filter = createBloom(bytes);
          for (const k of keys) bloomAdd(filter, k);
          for (const k of keys) assert.ok(bloomHas(filter, k), `lost ${JSON.stringify(k)}`);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('keeps under 2% false positives with 700 keys in 1 KiB', () => {
    const filter = createBloom(1_024);
    for (let i = 0; i < 700; i++) bloomAdd(filter, `i${i}`);
    let positives = 0;
    const probes = 20_000;
    for (let i = 0; i < probes; i++) if (bloomHas(filter, `other-${i}`)) positives++;
    const rate = positives / probes;
    assert.ok(rate < 0.02, `false-positive rate ${rate}`);
    // Random-looking keys too, not only the id pattern of the synthetic data.
    let randomPositives = 0;
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 30 }), (s) => {
        if (bloomHas(filter, `x${s}`)) randomPositives++;
      }),
      { numRuns: 5_000, seed: 42 },
    );
    assert.ok(randomPositives / 5_000 < 0.02, `random keys: ${randomPositives} of 5000`);
  });

  it('starts empty, and an empty (0-byte) filter holds nothing', () => {
    const filter = createBloom(64);
    assert.equal(filter.length, 64);
    assert.ok(filter.every((b) => b === 0));
    assert.equal(bloomHas(filter, 'a'), false);
    const none = createBloom(0);
    bloomAdd(none, 'a');
    assert.equal(bloomHas(none, 'a'), false);
  });

  it('sets at most 4 bits per key and distinguishes near-identical keys', () => {
    const filter = createBloom(1_024);
    bloomAdd(filter, 'item-1');
    const bits = filter.reduce((n, b) => n + b.toString(2).replace(/0/g, '').length, 0);
    assert.ok(bits >= 1 && bits <= 4, `${bits} bits`);
    for (const near of ['item-2', 'item-10', 'Item-1', 'item-1 ', 'item1']) assert.equal(bloomHas(filter, near), false, near);
  });

  it('survives a copy as plain bytes (what a store payload keeps)', () => {
    const filter = createBloom(128);
    for (const k of ['a', 'b', 'ünï', '🎧']) bloomAdd(filter, k);
    const copy = Uint8Array.from(Buffer.from(Buffer.from(filter).toString('base64'), 'base64'));
    for (const k of ['a', 'b', 'ünï', '🎧']) assert.ok(bloomHas(copy, k));
  });
});
