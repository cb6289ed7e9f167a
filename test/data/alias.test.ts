import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { buildAliasSegments, buildAliasTable } from '../../src/data/alias.ts';
import { createRng } from '../../src/data/random.ts';

describe('alias tables', () => {
  it('draws in proportion to the weights', () => {
    const weights = [1, 2, 3, 4, 0];
    const table = buildAliasTable(weights);
    const rng = createRng('alias');
    const counts = new Array<number>(weights.length).fill(0);
    const n = 100_000;
    for (let k = 0; k < n; k++) counts[table.sample(rng)]! += 1;
    weights.forEach((w, i) =>
      assert.ok(Math.abs(counts[i]! / n - w / 10) < 0.01, `outcome ${i}: ${counts[i]}`),
    );
    assert.equal(counts[4], 0, 'a zero weight is never drawn');
  });

  it('keeps segments apart, samples an all-zero segment uniformly and an empty one as -1', () => {
    const values = Int32Array.of(10, 11, 20, 21, 22);
    const weights = Float64Array.of(1, 1, 0, 0, 0);
    const segments = buildAliasSegments(values, weights, Int32Array.of(0, 2, 5, 5));
    const rng = createRng(3);
    const seen = new Set<number>();
    for (let k = 0; k < 2000; k++) {
      assert.ok([10, 11].includes(segments.sample(0, rng)));
      seen.add(segments.sample(1, rng));
    }
    assert.deepEqual([...seen].sort(), [20, 21, 22]);
    assert.equal(segments.sample(2, rng), -1);
    assert.equal(segments.count, 3);
    assert.equal(segments.size(1), 3);
  });

  it('only ever returns outcomes with positive weight (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 1, maxLength: 40 }),
        fc.integer(),
        (weights, seed) => {
          fc.pre(weights.some((w) => w > 0));
          const table = buildAliasTable(weights);
          const rng = createRng(seed);
          for (let k = 0; k < 200; k++) assert.ok(weights[table.sample(rng)]! > 0);
        },
      ),
    );
  });

  it('rejects negative or non-finite weights and inconsistent offsets', () => {
    assert.throws(() => buildAliasTable([1, -1]), RangeError);
    assert.throws(() => buildAliasTable([1, Number.POSITIVE_INFINITY]), RangeError);
    assert.throws(
      () => buildAliasSegments(Int32Array.of(1), Float64Array.of(1), Int32Array.of(0, 2)),
      RangeError,
    );
  });
});
