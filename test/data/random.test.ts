import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createRng, hashString } from '../../src/data/random.ts';

const draws = (seed: number | string, n: number): number[] => {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => rng.uint32());
};

describe('createRng', () => {
  it('repeats the same sequence for the same seed and differs for another', () => {
    assert.deepEqual(draws(42, 100), draws(42, 100));
    assert.deepEqual(draws('7', 10), draws(7, 10));
    assert.notDeepEqual(draws(42, 100), draws(43, 100));
    assert.notDeepEqual(draws('a', 100), draws('b', 100));
  });

  it('keeps next() in [0, 1) and int(n) in [0, n) for any seed', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 1_000_000 }), (seed, n) => {
        const rng = createRng(seed);
        for (let k = 0; k < 50; k++) {
          const x = rng.next();
          assert.ok(x >= 0 && x < 1);
          const i = rng.int(n);
          assert.ok(Number.isInteger(i) && i >= 0 && i < n);
          const j = rng.intBetween(-3, 3);
          assert.ok(Number.isInteger(j) && j >= -3 && j <= 3);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('spreads int(10) evenly (chi-square well under the 0.1% critical value)', () => {
    const rng = createRng('uniform');
    const counts = new Array<number>(10).fill(0);
    const n = 100_000;
    for (let k = 0; k < n; k++) counts[rng.int(10)]! += 1;
    const expected = n / 10;
    const chi2 = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    assert.ok(chi2 < 27.9, `chi2 ${chi2}`);
  });

  it('draws normals with mean 0 and variance 1', () => {
    const rng = createRng(5);
    const n = 50_000;
    let sum = 0;
    let squares = 0;
    for (let k = 0; k < n; k++) {
      const x = rng.normal();
      sum += x;
      squares += x * x;
    }
    const mean = sum / n;
    assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
    assert.ok(Math.abs(squares / n - mean * mean - 1) < 0.05, `variance ${squares / n}`);
  });

  it('forks independently of how much the parent was used', () => {
    const a = createRng(9);
    const b = createRng(9);
    for (let k = 0; k < 1000; k++) b.next();
    assert.equal(a.fork('x').uint32(), b.fork('x').uint32());
    assert.notEqual(a.fork('x').uint32(), a.fork('y').uint32());
    assert.equal(a.fork('x').seed, '9/x');
  });

  it('shuffles into a permutation', () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), fc.integer(), (items, seed) => {
        const shuffled = createRng(seed).shuffle([...items]);
        assert.deepEqual(
          [...shuffled].sort((x, y) => x - y),
          [...items].sort((x, y) => x - y),
        );
      }),
    );
  });

  it('refuses to pick from an empty array and a non-finite seed', () => {
    assert.throws(() => createRng(1).pick([]), RangeError);
    assert.throws(() => createRng(Number.NaN), RangeError);
  });
});

describe('hashString', () => {
  it('is a deterministic 32-bit hash', () => {
    assert.equal(hashString('starstream'), hashString('starstream'));
    assert.notEqual(hashString('a'), hashString('b'));
    fc.assert(
      fc.property(
        fc.string(),
        (s) => Number.isInteger(hashString(s)) && hashString(s) >>> 0 === hashString(s),
      ),
    );
  });
});
