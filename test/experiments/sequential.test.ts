import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng } from '../../src/data/random.ts';
import { ExperimentAccounting } from '../../src/experiments/accounting.ts';
import { decide, judge, overall } from '../../src/experiments/decide.ts';
import { compileExperiment } from '../../src/experiments/definition.ts';
import { msprt, proportionSequence } from '../../src/experiments/sequential.ts';
import { twoArms } from './helpers.ts';

describe('mSPRT on a hit-rate difference', () => {
  it('matches the closed form and is symmetric', () => {
    const r = msprt({ trials: 4_000, hits: 800 }, { trials: 4_000, hits: 920 }, 0.05, 0.02);
    const va = (800.5 / 4001) * (1 - 800.5 / 4001) / 4_000;
    const vb = (920.5 / 4001) * (1 - 920.5 / 4001) / 4_000;
    const v = va + vb;
    const tau2 = 0.0004;
    const lr = Math.sqrt(v / (v + tau2)) * Math.exp((tau2 * 0.03 * 0.03) / (2 * v * (v + tau2)));
    assert.ok(Math.abs(r.difference - 0.03) < 1e-12);
    assert.ok(Math.abs(r.likelihoodRatio / lr - 1) < 1e-9);
    assert.ok(Math.abs(r.pValue - 1 / lr) < 1e-12);
    const flipped = msprt({ trials: 4_000, hits: 920 }, { trials: 4_000, hits: 800 }, 0.05, 0.02);
    assert.ok(Math.abs(flipped.lower + r.upper) < 1e-12 && Math.abs(flipped.upper + r.lower) < 1e-12);
    assert.ok(Number.isNaN(msprt({ trials: 0, hits: 0 }, { trials: 10, hits: 1 }, 0.05, 0.02).difference));
    assert.throws(() => msprt({ trials: 1, hits: 0 }, { trials: 1, hits: 0 }, 0, 0.02), /alpha/);
  });

  it('rejects "no difference" exactly when the confidence sequence excludes 0', () => {
    const rng = createRng('duality');
    for (let i = 0; i < 2_000; i++) {
      const n1 = rng.intBetween(50, 20_000);
      const n2 = rng.intBetween(50, 20_000);
      const r = msprt({ trials: n1, hits: rng.int(n1) }, { trials: n2, hits: rng.int(n2) }, 0.05, rng.next() * 0.1 + 0.001);
      const rejects = r.likelihoodRatio >= 1 / 0.05;
      const excludes = r.lower > 0 || r.upper < 0;
      // Equality at the boundary is float noise; away from it the two must agree.
      if (Math.abs(Math.log(r.likelihoodRatio * 0.05)) > 1e-9) assert.equal(rejects, excludes, JSON.stringify(r));
    }
  });

  it('covers the true difference at every look at once, with probability ≥ 1 − α (continuous monitoring)', () => {
    // 200 streams with a true difference of +0.04, looked at after every pair of events for 5,000 pairs:
    // the fraction of streams whose sequence ever excludes the truth must stay ≤ α (Ville's inequality).
    let missed = 0;
    for (let run = 0; run < 200; run++) {
      const rng = createRng(`coverage-${run}`);
      let ha = 0;
      let hb = 0;
      for (let n = 1; n <= 5_000; n++) {
        ha += rng.bool(0.2) ? 1 : 0;
        hb += rng.bool(0.24) ? 1 : 0;
        if (n < 200) continue;
        const r = msprt({ trials: n, hits: ha }, { trials: n, hits: hb }, 0.05, 0.02);
        if (r.lower > 0.04 || r.upper < 0.04) {
          missed++;
          break;
        }
      }
    }
    assert.ok(missed <= 10, `${missed}/200 streams lost the truth`);
  });

  it('a single arm\'s sequence narrows with n and stays in [0, 1]', () => {
    const small = proportionSequence({ trials: 100, hits: 20 }, 0.05, 0.02);
    const large = proportionSequence({ trials: 100_000, hits: 20_000 }, 0.05, 0.02);
    assert.ok(small.lower >= 0 && small.upper <= 1 && large.upper - large.lower < small.upper - small.lower);
    assert.ok(large.lower < 0.2 && large.upper > 0.2);
  });
});

describe('experiment decisions', () => {
  function fill(acc: ExperimentAccounting, cell: string, trials: number, hits: number, latencyMs = 5, errors = 0): void {
    for (let i = 0; i < trials; i++) {
      acc.recordOutcome(cell, i < hits ? 0 : -1);
      acc.recordRequest(cell, latencyMs, i >= errors);
    }
  }

  it('waits for the minimum sample, then promotes a significantly better challenger', () => {
    const e = twoArms({ test: { minOutcomesPerArm: 1_000 } });
    const acc = new ExperimentAccounting(e);
    fill(acc, 'a', 900, 90);
    fill(acc, 'b', 900, 300);
    assert.equal(judge(e, acc)[0]!.code, 'MIN_SAMPLE');
    fill(acc, 'a', 100, 10);
    fill(acc, 'b', 100, 30);
    const report = decide(e, acc);
    assert.equal(report.decision, 'promote');
    assert.equal(report.arm, 'b');
    assert.equal(report.code, 'HIT_RATE_BETTER');
    assert.match(report.summary, /^experiment exp-test: promote b after 2000 outcomes/);
    assert.deepEqual(JSON.parse(JSON.stringify(report)), report, 'the report is plain JSON');
  });

  it('rolls back on a broken guardrail at once, before the minimum sample and whatever the hit rate', () => {
    const e = twoArms({ guardrails: { maxP99LatencyMs: 100, maxErrorRate: 0.01, minRequests: 200 } });
    const slow = new ExperimentAccounting(e);
    fill(slow, 'a', 300, 30);
    fill(slow, 'b', 199, 199, 400);
    assert.equal(judge(e, slow)[0]!.code, 'MIN_SAMPLE', 'not judged before minRequests');
    fill(slow, 'b', 1, 1, 400);
    const report = decide(e, slow);
    assert.deepEqual([report.decision, report.code], ['rollback', 'GUARDRAIL_LATENCY']);
    assert.match(report.reason, /p99 latency .* > bound 100 ms/);
    const failing = new ExperimentAccounting(e);
    fill(failing, 'b', 300, 300, 5, 4);
    assert.deepEqual([decide(e, failing).decision, decide(e, failing).code], ['rollback', 'GUARDRAIL_ERRORS']);
  });

  it('stops as inconclusive at the maximum duration', () => {
    const e = twoArms({ test: { minOutcomesPerArm: 100, maxOutcomes: 2_000 } });
    const acc = new ExperimentAccounting(e);
    fill(acc, 'a', 999, 200);
    fill(acc, 'b', 1_000, 201);
    assert.equal(decide(e, acc).decision, 'continue');
    fill(acc, 'a', 1, 0);
    const report = decide(e, acc);
    assert.deepEqual([report.decision, report.code], ['inconclusive', 'MAX_DURATION']);
  });

  it('splits α over the challengers and promotes the one with the highest lower bound', () => {
    const e = compileExperiment({
      name: 'three',
      salt: 's',
      arms: [
        { name: 'a', scorer: { kind: 'baseline' }, share: 0.4 },
        { name: 'b', scorer: { kind: 'online' }, share: 0.3 },
        { name: 'c', scorer: { kind: 'star', version: 'star-9' }, share: 0.3 },
      ],
      holdoutShare: 0.05,
      test: { minOutcomesPerArm: 100 },
    });
    const acc = new ExperimentAccounting(e);
    fill(acc, 'a', 5_000, 1_000);
    fill(acc, 'b', 5_000, 1_200);
    fill(acc, 'c', 5_000, 1_400);
    fill(acc, 'holdout', 500, 100);
    const report = decide(e, acc);
    assert.equal(report.challengers[0]!.test.alpha, 0.025);
    assert.deepEqual([report.decision, report.arm], ['promote', 'c']);
    assert.equal(report.holdout?.outcomes, 500);
    assert.equal(report.holdout?.scorer?.kind, 'baseline');
    assert.equal(overall([]).decision, 'rollback', 'no challengers: nothing left to run');
  });
});
