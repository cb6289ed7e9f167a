import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SamplingReason } from '../../../src/domain/teacher.ts';
import { CaseSampler, headPopularity, marginOf, toTeacherCase, type SamplingInput, type SamplingOptions } from '../../../src/stages/sampling/index.ts';
import { TokenBucket } from '../../../src/stages/sampling/budget.ts';
import { T0, evidence, userContext } from '../../teacher/case-fixtures.ts';

const ONLY = (reason: SamplingReason): Record<SamplingReason, number> => ({ uniform: 0, uncertain: 0, 'cold-user': 0, 'long-tail': 0, [reason]: 1 });

function options(extra: Partial<SamplingOptions> = {}): SamplingOptions {
  return {
    enabled: true,
    casesPerMinute: 6,
    burstCases: 6,
    candidatesPerCase: 4,
    seed: 1,
    weights: { uniform: 1, uncertain: 1, 'cold-user': 1, 'long-tail': 1 },
    uncertainMaxMargin: 0.05,
    coldUserMaxInteractions: 5,
    longTailMaxPopularityShare: 0.1,
    longTailMinShare: 0.5,
    rateWindowMs: 60_000,
    ...extra,
  };
}

/** A ranked event: scores best first with the given top-2 margin, the user's count and the list's popularity. */
function input(i: number, o: { margin?: number; interactions?: number; popularity?: number; atMs?: number } = {}): SamplingInput {
  const margin = o.margin ?? 1;
  const scores = [5, 5 - margin, 1, 0.5, 0.1];
  const ranked = scores.map((score, k) => ({ score, evidence: evidence(`i${k}`, { popularity: o.popularity ?? 500 }) }));
  return { eventId: `e${i}`, atMs: o.atMs ?? T0 + i * 100, user: userContext(`u${i % 50}`, o.interactions ?? 50), ranked, headPopularity: 1_000 };
}

function run(sampler: CaseSampler, inputs: readonly SamplingInput[]): { input: SamplingInput; reason: SamplingReason; margin: number | null }[] {
  const out = [];
  for (const x of inputs) {
    const d = sampler.decide(x);
    if (d) out.push({ input: x, ...d });
  }
  return out;
}

describe('CaseSampler strategies', () => {
  it('uncertain picks only events whose top-2 margin is within the threshold, and records the margin', () => {
    const sampler = new CaseSampler(options({ weights: ONLY('uncertain'), casesPerMinute: 1_000, burstCases: 1_000 }));
    const inputs = Array.from({ length: 200 }, (_, i) => input(i, { margin: i % 2 === 0 ? 0.01 : 0.5 }));
    const picked = run(sampler, inputs);
    assert.ok(picked.length > 50, `picked ${picked.length}`);
    for (const p of picked) {
      assert.equal(p.reason, 'uncertain');
      assert.ok(Math.abs(p.margin! - 0.01) < 1e-9);
    }
  });

  it('cold-user picks only users with at most coldUserMaxInteractions interactions', () => {
    const sampler = new CaseSampler(options({ weights: ONLY('cold-user'), casesPerMinute: 1_000, burstCases: 1_000 }));
    const inputs = Array.from({ length: 200 }, (_, i) => input(i, { interactions: i % 4 === 0 ? 3 : 40 }));
    const picked = run(sampler, inputs);
    assert.ok(picked.length > 20);
    for (const p of picked) {
      assert.equal(p.reason, 'cold-user');
      assert.equal(p.margin, null);
      assert.ok(p.input.user.interactionCount <= 5);
    }
  });

  it('long-tail picks lists whose candidates are mostly tail items relative to the head', () => {
    const sampler = new CaseSampler(options({ weights: ONLY('long-tail'), casesPerMinute: 1_000, burstCases: 1_000 }));
    // head = 1000; tail items have popularity ≤ 100.
    const inputs = Array.from({ length: 200 }, (_, i) => input(i, { popularity: i % 3 === 0 ? 50 : 500 }));
    const picked = run(sampler, inputs);
    assert.ok(picked.length > 20);
    for (const p of picked) assert.equal(p.input.ranked[0]!.evidence.features.popularity, 50);
    // Nothing is tail when the stream has no popularity yet.
    assert.equal(sampler.eligible({ ...input(1, { popularity: 0 }), headPopularity: 0 }).includes('long-tail'), false);
  });

  it('an event meeting several conditions is offered to the specific strategies first', () => {
    const sampler = new CaseSampler(options({ casesPerMinute: 1_000, burstCases: 1_000 }));
    assert.deepEqual(sampler.eligible(input(1, { margin: 0.01, interactions: 2, popularity: 1 })), ['uncertain', 'cold-user', 'long-tail', 'uniform']);
    assert.deepEqual(sampler.eligible(input(2)), ['uniform']);
    assert.equal(sampler.decide(input(3, { margin: 0.01, interactions: 2 }))?.reason, 'uncertain');
  });

  it('never picks when disabled or when there is nothing ranked', () => {
    assert.equal(new CaseSampler(options({ enabled: false })).decide(input(1)), null);
    assert.equal(new CaseSampler(options()).decide({ ...input(1), ranked: [] }), null);
  });
});

describe('CaseSampler budget (event time)', () => {
  it('takes about casesPerMinute, spread over the stream rather than the first events of each minute', () => {
    const sampler = new CaseSampler(options({ weights: ONLY('uniform'), casesPerMinute: 6, burstCases: 2, rateWindowMs: 60_000 }));
    // 20 minutes at 600 events per minute.
    const inputs = Array.from({ length: 12_000 }, (_, i) => input(i));
    const picked = run(sampler, inputs);
    const minutes = 20;
    assert.ok(picked.length >= 6 * minutes * 0.6 && picked.length <= 6 * minutes + 2, `picked ${picked.length}`);
    const perMinute = new Map<number, number[]>();
    for (const p of picked) {
      const minute = Math.floor((p.input.atMs - T0) / 60_000);
      const offsets = perMinute.get(minute) ?? [];
      offsets.push((p.input.atMs - T0) % 60_000);
      perMinute.set(minute, offsets);
    }
    // Every minute gets cases (the draws are random, so a count can dip), and not only in its first seconds.
    for (let m = 0; m < minutes; m++) assert.ok((perMinute.get(m)?.length ?? 0) >= 1, `minute ${m}`);
    const late = picked.filter((p) => (p.input.atMs - T0) % 60_000 >= 30_000).length;
    assert.ok(late >= picked.length * 0.25, `${late} of ${picked.length} in the second half of their minute`);
  });

  it('never exceeds the bucket: at most burst + rate × elapsed cases in any prefix', () => {
    const sampler = new CaseSampler(options({ weights: ONLY('uniform'), casesPerMinute: 6, burstCases: 3 }));
    const inputs = Array.from({ length: 3_000 }, (_, i) => input(i, { atMs: T0 + i * 10 }));
    let taken = 0;
    for (const x of inputs) {
      if (sampler.decide(x)) taken++;
      const minutes = (x.atMs - T0) / 60_000;
      assert.ok(taken <= 3 + 6 * minutes + 1e-9, `${taken} cases after ${minutes} min`);
    }
    assert.ok(taken >= 3);
  });

  it('splits the budget by weight', () => {
    const sampler = new CaseSampler(options({ weights: { uniform: 3, uncertain: 1, 'cold-user': 0, 'long-tail': 0 }, casesPerMinute: 8, burstCases: 4 }));
    const inputs = Array.from({ length: 24_000 }, (_, i) => input(i, { margin: i % 2 === 0 ? 0.01 : 1, atMs: T0 + i * 50 }));
    const picked = run(sampler, inputs);
    const by = (r: SamplingReason): number => picked.filter((p) => p.reason === r).length;
    // 20 minutes: uniform 6/min, uncertain 2/min.
    assert.ok(by('uniform') > by('uncertain') * 2, `uniform ${by('uniform')}, uncertain ${by('uncertain')}`);
    assert.ok(by('uncertain') >= 20 && by('uncertain') <= 2 * 20 + 2, `uncertain ${by('uncertain')}`);
    assert.equal(by('cold-user') + by('long-tail'), 0);
  });

  it('token bucket: refills with event time only forwards, caps at capacity', () => {
    const b = new TokenBucket(60, 2);
    assert.equal(b.take(T0), true);
    assert.equal(b.take(T0), true);
    assert.equal(b.take(T0), false);
    assert.equal(b.take(T0 - 10_000), false, 'an earlier timestamp refills nothing');
    assert.equal(b.take(T0 + 1_000), true);
    assert.ok(b.available(T0 + 3_600_000) <= 2);
  });
});

describe('CaseSampler determinism', () => {
  it('the same seed and stream give the same cases; another seed other cases', () => {
    const inputs = Array.from({ length: 5_000 }, (_, i) => input(i, { margin: i % 5 === 0 ? 0.01 : 1, interactions: i % 7 === 0 ? 1 : 30 }));
    const ids = (seed: number) => run(new CaseSampler(options({ seed })), inputs).map((p) => `${p.input.eventId}:${p.reason}`);
    assert.deepEqual(ids(1), ids(1));
    assert.notDeepEqual(ids(1), ids(2));
  });
});

describe('toTeacherCase', () => {
  it('freezes the event: candidates best first with their scores, reason, margin, model and template versions', () => {
    const x = input(7, { margin: 0.02 });
    const chosen = x.ranked.slice(0, 4).map((r) => ({ ...r.evidence, sentences: ['rendered'] }));
    const c = toTeacherCase(x, { reason: 'uncertain', margin: marginOf(x.ranked) }, chosen, { studentModel: 'baseline-2', templateVersion: 'cst-1' });
    assert.equal(c.caseId, 'case-e7');
    assert.equal(c.atMs, x.atMs);
    assert.deepEqual(c.candidates.map((e) => e.itemId), ['i0', 'i1', 'i2', 'i3']);
    assert.deepEqual(c.studentScores, [5, 4.98, 1, 0.5]);
    assert.ok(Math.abs(c.margin! - 0.02) < 1e-9);
    assert.equal(c.studentModel, 'baseline-2');
    assert.equal(c.templateVersion, 'cst-1');
    assert.throws(() => toTeacherCase(x, { reason: 'uniform', margin: null }, [...chosen].reverse(), { studentModel: 'm', templateVersion: 't' }));
  });

  it('headPopularity is the largest candidate popularity', () => {
    assert.equal(headPopularity([evidence('a', { popularity: 3 }), evidence('b', { popularity: 9 })]), 9);
    assert.equal(headPopularity([]), 0);
  });
});
