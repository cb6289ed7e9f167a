import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ScoringCase } from '../../src/domain/evidence.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { assignArm } from '../../src/experiments/assign.ts';
import { compileExperiment, type ExperimentInput } from '../../src/experiments/definition.ts';
import { ExperimentRuntime, readLatestReport } from '../../src/experiments/runtime.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import type { Scorer } from '../../src/star/port.ts';

/** The runtime's looks: what they apply (retire, promote, conclude), what they write, and a restart from it. */

const dir = mkdtempSync(join(tmpdir(), 'starstream-experiment-runtime-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fixed(modelVersion: string, delayMs = 0): Scorer {
  return {
    modelVersion,
    readsSentences: false,
    score: async (cases: readonly ScoringCase[]) => {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      return cases.map((c) => new Float32Array(c.candidates.length));
    },
    close: async () => {},
  };
}

function runtime(name: string, overrides: Partial<ExperimentInput> = {}, promote?: () => Promise<string>): ExperimentRuntime {
  const experiment = compileExperiment({
    name,
    salt: 's',
    arms: [
      { name: 'a', scorer: { kind: 'baseline' }, share: 0.5 },
      { name: 'b', scorer: { kind: 'star', version: 'v2' }, share: 0.5 },
    ],
    k: 1,
    test: { minOutcomesPerArm: 50 },
    guardrails: { minRequests: 10, maxP99LatencyMs: 5 },
    stateDir: dir,
    lookEveryMs: 0,
    ...overrides,
  });
  const sources = new Map([
    ['a', () => fixed('baseline-1')],
    ['b', () => fixed('star-v2')],
  ]);
  return new ExperimentRuntime({ experiment, sources, logger: silentLogger(), ...(promote ? { promote } : {}) });
}

let n = 0;
const event = (userId: string, itemId: string): Interaction => ({ eventId: `e${n++}`, userId, itemId, type: 'view', value: null, timestampMs: n, context: {} });

/** Serves every user a one-item list and joins the next event: a hit for users of `hitArm` only. */
function play(rt: ExperimentRuntime, users: number, hitArm: string): void {
  for (let u = 0; u < users; u++) {
    const userId = `u${u}`;
    const first = event(userId, 'x');
    rt.observe(first);
    rt.served(first, ['hit'], rt.router.route(userId).cell);
    const arm = assignArm(userId, rt.experiment).arm;
    rt.observe(event(userId, arm === hitArm ? 'hit' : 'miss'));
  }
}

describe('ExperimentRuntime', () => {
  it('promotes a challenger that is better, publishes it through the hook, and concludes', async () => {
    const promoted: string[] = [];
    const rt = runtime('promote', {}, async () => {
      promoted.push('b');
      return 'published';
    });
    play(rt, 400, 'b');
    const report = await rt.look();
    assert.equal(report.decision, 'promote');
    assert.deepEqual(report.applied.map((a) => `${a.action} ${a.arm} ${a.note}`), ['promoted b published']);
    assert.deepEqual(promoted, ['b']);
    assert.equal(rt.router.route('anyone').arm, 'b');
    assert.deepEqual(report.serving, { a: false, b: true });
    assert.equal(readLatestReport(dir, 'promote')?.decision, 'promote');
    // Decided once: the next look applies nothing more.
    assert.deepEqual((await rt.look()).applied, []);
  });

  it('rolls a worse challenger back: its users go to the champion and count nowhere', async () => {
    const rt = runtime('rollback');
    play(rt, 400, 'a');
    const report = await rt.look();
    assert.equal(report.challengers[0]!.verdict, 'rollback');
    assert.equal(report.concludedWith, 'a');
    const bUser = [...Array(50).keys()].map((i) => `u${i}`).find((u) => assignArm(u, rt.experiment).arm === 'b')!;
    assert.deepEqual(rt.router.route(bUser), { arm: 'a', cell: null });
  });

  it('rolls back on the latency guardrail, whatever the hit rate', async () => {
    const rt = runtime('guardrail');
    const slow = new Map([
      ['a', () => fixed('baseline-1')],
      ['b', () => fixed('star-v2', 8)],
    ]);
    const experiment = rt.experiment;
    const guarded = new ExperimentRuntime({ experiment, sources: slow, logger: silentLogger() });
    const users = [...Array(60).keys()].map((i) => `g${i}`);
    const c: ScoringCase = { eventId: 'x', atMs: 0, user: { userId: 'g', interactionCount: 0, recentItems: [], categoryMix: [] }, candidates: [] };
    for (const u of users) await guarded.router.scorerFor(u).score([c]);
    const report = await guarded.look();
    assert.equal(report.challengers[0]!.code, 'GUARDRAIL_LATENCY');
    assert.ok(guarded.router.isRetired('b'));
  });

  it('a restart reads the counts, decisions and pending lists back', async () => {
    const rt = runtime('restart');
    play(rt, 40, 'b');
    const pendingUser = 'late';
    const served = event(pendingUser, 'x');
    rt.observe(served);
    rt.served(served, ['next'], rt.router.route(pendingUser).cell);
    await rt.close();
    assert.ok(existsSync(join(dir, 'restart', 'state.json')));
    const again = runtime('restart');
    const before = again.accounting.snapshot();
    assert.deepEqual(before, rt.accounting.snapshot());
    again.observe(event(pendingUser, 'next'));
    const cell = assignArm(pendingUser, again.experiment).arm;
    assert.equal(again.accounting.counts(cell).trials, rt.accounting.counts(cell).trials + 1);
    assert.equal(again.accounting.counts(cell).hits, rt.accounting.counts(cell).hits + 1);
  });

  it('a redelivered event is joined once', () => {
    const rt = runtime('redelivery');
    const e1 = event('r', 'x');
    const e2 = event('r', 'hit');
    for (let attempt = 0; attempt < 2; attempt++) {
      for (const e of [e1, e2]) {
        rt.observe(e);
        rt.served(e, ['hit'], rt.router.route('r').cell);
      }
    }
    const cell = assignArm('r', rt.experiment).arm;
    assert.equal(rt.accounting.counts(cell).trials, 1);
  });
});
