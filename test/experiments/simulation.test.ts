import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { simulateExperiment } from '../../src/experiments/simulate.ts';
import { twoArms } from './helpers.ts';

/**
 * The acceptance simulation of issue 19: a seeded world where each arm's true hit@10 probability is known,
 * users assigned by the experiment's hash, the decision looked at after every event.
 */

const BASE = 0.2;
const MARGIN = 0.03;
/** Bound on the events to a decision when the truth differs by MARGIN (the test's maximum duration). */
const BOUND = 40_000;
const SEEDS = Array.from({ length: 20 }, (_, i) => i);

const experiment = twoArms({ test: { minOutcomesPerArm: 1_000, maxOutcomes: BOUND } });

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe('experiment simulation', () => {
  it(`promotes a challenger truly better by ${MARGIN} within ${BOUND} events, every seed`, (t) => {
    const events = SEEDS.map((seed) => {
      const r = simulateExperiment({ experiment, hitRates: { a: BASE, b: BASE + MARGIN }, seed: `better-${seed}` });
      assert.equal(r.decision, 'promote', `seed ${seed}: ${r.report.summary}`);
      assert.equal(r.report.arm, 'b');
      return r.events;
    });
    t.diagnostic(`promotion after median ${median(events)}, max ${Math.max(...events)} events`);
  });

  it(`rolls back a challenger truly worse by ${MARGIN} within ${BOUND} events, every seed`, (t) => {
    const events = SEEDS.map((seed) => {
      const r = simulateExperiment({ experiment, hitRates: { a: BASE, b: BASE - MARGIN }, seed: `worse-${seed}` });
      assert.deepEqual([r.decision, r.report.code], ['rollback', 'HIT_RATE_WORSE'], `seed ${seed}: ${r.report.summary}`);
      return r.events;
    });
    t.diagnostic(`rollback after median ${median(events)}, max ${Math.max(...events)} events`);
  });

  it('promotes falsely in at most 5 % of 200 A/A runs, looked at after every event', (t) => {
    const aa = twoArms({ test: { minOutcomesPerArm: 1_000, maxOutcomes: 20_000 } });
    const decisions = { promote: 0, rollback: 0, inconclusive: 0, continue: 0 };
    for (let seed = 0; seed < 200; seed++) {
      decisions[simulateExperiment({ experiment: aa, hitRates: { a: BASE, b: BASE }, seed: `aa-${seed}` }).decision]++;
    }
    t.diagnostic(`A/A over 200 runs of 20,000 events: ${JSON.stringify(decisions)}`);
    assert.ok(decisions.promote <= 10, `${decisions.promote}/200 false promotions`);
  });

  it('rolls back a challenger with injected latency by the guardrail, even though its hit rate is better', (t) => {
    for (const seed of [1, 2, 3]) {
      const r = simulateExperiment({
        experiment,
        hitRates: { a: BASE, b: BASE + 0.1 },
        latencyMs: { a: 5, b: 80 }, // exponential: p99 ≈ 370 ms against the 250 ms bound
        seed: `slow-${seed}`,
      });
      assert.deepEqual([r.decision, r.report.code], ['rollback', 'GUARDRAIL_LATENCY'], r.report.summary);
      // minRequests (200) of the challenger's half of the traffic: about 400 events, before the minimum sample.
      assert.ok(r.events < 600, `after ${r.events} events`);
      if (seed === 1) t.diagnostic(`latency guardrail after ${r.events} events: ${r.report.reason}`);
    }
  });

  it('rolls back a challenger whose error rate breaks the bound', () => {
    const r = simulateExperiment({ experiment, hitRates: { a: BASE, b: BASE }, errorRates: { b: 0.05 }, seed: 'errors' });
    assert.deepEqual([r.decision, r.report.code], ['rollback', 'GUARDRAIL_ERRORS'], r.report.summary);
  });

  it('keeps the holdout on the champion, apart from the test', () => {
    const held = twoArms({ holdoutShare: 0.2, test: { maxOutcomes: BOUND } });
    const r = simulateExperiment({ experiment: held, hitRates: { a: BASE, b: BASE + MARGIN }, seed: 'holdout', traceEvery: 500 });
    assert.equal(r.decision, 'promote');
    const holdout = r.report.holdout!;
    const share = holdout.outcomes / r.events;
    assert.ok(Math.abs(share - 0.2) < 0.03, `holdout share ${share}`);
    assert.equal(r.report.outcomes + holdout.outcomes, r.events);
    assert.ok(r.trace.length > 0 && r.trace.every((p) => p.lower <= p.difference && p.difference <= p.upper));
  });
});
