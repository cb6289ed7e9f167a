import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng } from '../../src/data/random.ts';
import { ExperimentAccounting, mergeSnapshots } from '../../src/experiments/accounting.ts';
import { HOLDOUT } from '../../src/experiments/definition.ts';
import { bucketOf, bucketUpperMs, LATENCY_BUCKETS, LatencyHistogram } from '../../src/experiments/latency.ts';
import { percentile } from '../../src/util/stats.ts';
import { twoArms } from './helpers.ts';

describe('experiment accounting', () => {
  it('counts hit@K, NDCG@K, requests and errors per arm', () => {
    const acc = new ExperimentAccounting(twoArms({ k: 5 }));
    acc.recordOutcome('a', 0); // hit, NDCG 1
    acc.recordOutcome('a', 2); // hit, NDCG 1/log2(4) = 0.5
    acc.recordOutcome('a', 5); // outside K
    acc.recordOutcome('a', -1); // not in the list
    acc.recordOutcome('b', 1);
    acc.recordRequest('a', 3);
    acc.recordRequest('a', 4, false);
    acc.recordRequest('b', Number.NaN, false);
    const a = acc.counts('a');
    assert.deepEqual([a.trials, a.hits, a.requests, a.errors, a.latency.count], [4, 2, 2, 1, 2]);
    assert.ok(Math.abs(a.ndcgSum - 1.5) < 1e-12);
    assert.ok(Math.abs(a.ndcgSumSq - 1.25) < 1e-12);
    const b = acc.counts('b');
    assert.deepEqual([b.trials, b.hits, b.requests, b.errors, b.latency.count], [1, 1, 1, 1, 0], 'an error without a latency counts, records no latency');
    assert.throws(() => acc.recordOutcome('zz', 0), /no arm zz/);
    assert.throws(() => acc.recordOutcome(HOLDOUT, 0), /no arm holdout/, 'no holdout cell without a holdout share');
  });

  it('has a holdout cell when the experiment keeps one', () => {
    const acc = new ExperimentAccounting(twoArms({ holdoutShare: 0.1 }));
    acc.recordOutcome(HOLDOUT, 0);
    assert.equal(acc.counts(HOLDOUT).hits, 1);
  });

  it('snapshots are JSON and merge exactly: instances combine into the totals of one', () => {
    const experiment = twoArms();
    const rng = createRng('merge');
    const whole = new ExperimentAccounting(experiment);
    const parts = [new ExperimentAccounting(experiment), new ExperimentAccounting(experiment), new ExperimentAccounting(experiment)];
    for (let i = 0; i < 3_000; i++) {
      const cell = rng.bool(0.5) ? 'a' : 'b';
      const rank = rng.bool(0.3) ? rng.int(10) : -1;
      const ms = rng.exponential(20);
      const ok = rng.bool(0.99);
      whole.recordOutcome(cell, rank);
      whole.recordRequest(cell, ms, ok);
      const part = parts[i % 3]!;
      part.recordOutcome(cell, rank);
      part.recordRequest(cell, ms, ok);
    }
    const merged = mergeSnapshots(
      experiment,
      parts.map((p) => JSON.parse(JSON.stringify(p.snapshot()))),
    );
    const round = (s: ReturnType<ExperimentAccounting['snapshot']>): unknown =>
      JSON.parse(JSON.stringify(s, (_, v: unknown) => (typeof v === 'number' ? Number(v.toFixed(9)) : v)));
    assert.deepEqual(round(merged.snapshot()), round(whole.snapshot()));
    assert.equal(merged.latencyQuantile('a', 0.99), whole.latencyQuantile('a', 0.99));
    const other = new ExperimentAccounting(twoArms({ name: 'other' }));
    assert.throws(() => whole.merge(other.snapshot()), /cannot merge/);
  });
});

describe('latency histogram', () => {
  it('bounded memory; quantiles never understate and overstate by at most 9 %', () => {
    const rng = createRng('latency');
    const h = new LatencyHistogram();
    const values: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      const v = rng.exponential(12) + 0.5;
      values.push(v);
      h.add(v);
    }
    assert.equal(h.counts.length, LATENCY_BUCKETS + 1);
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const exact = percentile(values, q * 100);
      const approx = h.quantile(q);
      assert.ok(approx >= exact && approx <= exact * 2 ** (1 / 8) + 1e-9, `q${q}: ${approx} vs exact ${exact}`);
    }
    assert.ok(Number.isNaN(new LatencyHistogram().quantile(0.99)));
  });

  it('puts every value in the bucket whose bound is the first at or above it', () => {
    for (const ms of [0, 0.001, 0.01, 0.0109, 0.5, 1, 7.3, 250, 99_000]) {
      const i = bucketOf(ms);
      assert.ok(bucketUpperMs(i) >= ms * (1 - 1e-12), `${ms} → ${i}`);
      if (i > 0) assert.ok(bucketUpperMs(i - 1) < ms * (1 + 1e-12), `${ms} → ${i}`);
    }
    const h = new LatencyHistogram();
    h.add(1e9);
    assert.equal(h.quantile(0.99), Number.POSITIVE_INFINITY, 'beyond the last bound: overflow, reported as +Infinity');
    assert.deepEqual(LatencyHistogram.fromJSON(h.toJSON()).counts, h.counts);
    assert.throws(() => LatencyHistogram.fromJSON([[LATENCY_BUCKETS + 1, 1]]), /bad latency bucket/);
  });
});
