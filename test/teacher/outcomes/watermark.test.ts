import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PartitionWatermark } from '../../../src/teacher/outcomes/watermark.ts';

describe('PartitionWatermark', () => {
  it('is the smallest of the partitions\' latest times, and never moves back', () => {
    const w = new PartitionWatermark();
    assert.equal(w.update(0, [5, 9, 7]), 9);
    assert.equal(w.update(1, [3]), 9, 'a slower partition seen later cannot move it back');
    assert.equal(w.update(1, [12]), 9);
    assert.equal(w.update(0, [20]), 12);
    assert.equal(w.update(0, []), 12, 'an empty batch keeps what the partition had');
  });

  it('an expected partition holds it back until it delivers; an unexpected one counts from its first batch', () => {
    const w = new PartitionWatermark();
    w.expect([0, 1]);
    assert.equal(w.update(0, [10]), Number.NEGATIVE_INFINITY);
    assert.equal(w.update(1, [4]), 4);
    assert.equal(w.update(2, [6]), 4);
    w.expect([0, 1, 2]);
    assert.equal(w.update(1, [30]), 6, 'listing known partitions again changes nothing');
  });
});
