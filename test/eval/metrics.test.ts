import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hitAt, MetricMeans, ndcgAt } from '../../src/eval/metrics.ts';

describe('ranking metrics', () => {
  it('hitAt counts ranks inside the cut-off, 0-based', () => {
    assert.equal(hitAt(0, 1), 1);
    assert.equal(hitAt(9, 10), 1);
    assert.equal(hitAt(10, 10), 0);
    assert.equal(hitAt(-1, 10), 0, 'not ranked');
  });

  it('ndcgAt is 1/log2(rank+2) inside the cut-off', () => {
    assert.equal(ndcgAt(0, 10), 1);
    assert.ok(Math.abs(ndcgAt(1, 10) - 1 / Math.log2(3)) < 1e-12);
    assert.ok(Math.abs(ndcgAt(2, 10) - 0.5) < 1e-12);
    assert.equal(ndcgAt(10, 10), 0);
    assert.equal(ndcgAt(-1, 10), 0);
    for (let r = 1; r < 10; r++) assert.ok(ndcgAt(r, 10) < ndcgAt(r - 1, 10), 'decreasing with rank');
  });

  it('MetricMeans averages every named metric over the cases added', () => {
    const means = new MetricMeans();
    assert.equal(means.mean('hit'), 0, 'no cases: 0, not NaN');
    means.add({ hit: 1, ndcg: 0.5 });
    means.add({ hit: 0, ndcg: 0 });
    means.add({ hit: 1 });
    assert.equal(means.count, 3);
    assert.ok(Math.abs(means.mean('hit') - 2 / 3) < 1e-12);
    assert.ok(Math.abs(means.mean('ndcg') - 0.5 / 3) < 1e-12, 'a metric missing from a case counts as 0');
    assert.equal(means.mean('unknown'), 0);
  });
});
