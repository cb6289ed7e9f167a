import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PartitionWatermark } from '../../../src/teacher/outcomes/watermark.ts';

describe('PartitionWatermark', () => {
  it('is the smallest of the partitions\' latest times; an empty batch keeps what its partition had', () => {
    const w = new PartitionWatermark();
    assert.equal(w.ms, Number.NEGATIVE_INFINITY, 'nothing read');
    w.update(0, [5, 9, 7]);
    assert.equal(w.ms, 9);
    w.update(1, [3]);
    assert.equal(w.ms, 3, 'a slower partition holds it back');
    w.update(1, [12]);
    assert.equal(w.ms, 9);
    w.update(0, [20]);
    assert.equal(w.ms, 12);
    w.update(0, []);
    assert.equal(w.ms, 12);
  });

  it('an expected partition holds it back until it delivers; an unexpected one counts from its first batch', () => {
    const w = new PartitionWatermark();
    w.expect([0, 1]);
    w.update(0, [10]);
    assert.equal(w.ms, Number.NEGATIVE_INFINITY);
    w.update(1, [4]);
    assert.equal(w.ms, 4);
    w.update(2, [6]);
    assert.equal(w.ms, 4);
    w.expect([0, 1, 2]);
    w.update(1, [30]);
    assert.equal(w.ms, 6, 'listing known partitions again changes nothing');
  });
});
