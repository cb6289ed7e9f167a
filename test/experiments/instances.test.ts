import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { formatStatus } from '../../src/cli/experiment.ts';
import { generateStream } from '../../src/data/synthetic.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { assignArm } from '../../src/experiments/assign.ts';
import { compileExperiment, type ExperimentInput } from '../../src/experiments/definition.ts';
import { ExperimentRuntime, readLatestReport } from '../../src/experiments/runtime.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import type { Scorer } from '../../src/star/port.ts';

/**
 * Several instances judged together: users split between two runtimes (as partitions split them between the
 * instances of a consumer group) that share one `stateDir` give the same report as one runtime that saw every
 * user; a decision one instance takes holds in the other at its next look, and is applied once.
 */

const root = mkdtempSync(join(tmpdir(), 'starstream-experiment-instances-'));
after(() => rmSync(root, { recursive: true, force: true }));

const noScorer: Scorer = { modelVersion: 'none', readsSentences: false, score: async () => [], close: async () => {} };

function runtime(stateDir: string, instance: string | undefined, overrides: Partial<ExperimentInput> = {}, promoted: string[] = []): ExperimentRuntime {
  const experiment = compileExperiment({
    name: 'split',
    salt: 'instances',
    arms: [
      { name: 'a', scorer: { kind: 'baseline' }, share: 0.5 },
      { name: 'b', scorer: { kind: 'star', version: 'v2' }, share: 0.5 },
    ],
    holdoutShare: 0.1,
    k: 3,
    test: { minOutcomesPerArm: 100_000 },
    stateDir,
    lookEveryMs: 0,
    ...(instance ? { instance } : {}),
    ...overrides,
  });
  const sources = new Map([
    ['a', () => noScorer],
    ['b', () => noScorer],
  ]);
  return new ExperimentRuntime({
    experiment,
    sources,
    logger: silentLogger(),
    promote: async (arm) => {
      promoted.push(arm.name);
      return `published ${arm.name}`;
    },
  });
}

/** Each event joins its user's last list, then the user is served a list of the items the user will see next or not. */
function feed(rt: ExperimentRuntime, events: readonly Interaction[], lists: (e: Interaction, i: number) => string[]): void {
  events.forEach((e, i) => {
    rt.observe(e);
    rt.served(e, lists(e, i), rt.router.route(e.userId).cell);
  });
}

describe('experiment over several instances', () => {
  const events = [...generateStream({ users: 300, items: 60, events: 6_000, seed: 77 })];
  // Lists that depend on the event only (as a deterministic scorer's would): some hit the user's next item.
  const next = new Map<number, string>();
  const lastIndex = new Map<string, number>();
  events.forEach((e, i) => {
    const previous = lastIndex.get(e.userId);
    if (previous !== undefined) next.set(previous, e.itemId);
    lastIndex.set(e.userId, i);
  });
  const lists = (_e: Interaction, i: number): string[] => (i % 3 === 0 && next.has(i) ? ['x', next.get(i)!, 'y'] : ['x', 'y', 'z']);
  // The partitioner of a two-instance group: a user belongs to one instance.
  const owner = (userId: string): number => Number.parseInt(userId.replace(/\D/g, '') || '0', 10) % 2;

  it('two instances sharing stateDir report the sums one instance over every user reports', async () => {
    const solo = runtime(join(root, 'solo'), undefined);
    feed(solo, events, lists);
    const alone = await solo.look();

    const shared = join(root, 'shared');
    const instances = [runtime(shared, 'pod-0'), runtime(shared, 'pod-1')];
    for (const [n, rt] of instances.entries()) {
      feed(rt, events.filter((e) => owner(e.userId) === n), (e) => lists(e, events.indexOf(e)));
    }
    assert.ok(instances.every((rt) => rt.join.snapshot().pending.length > 0));
    await instances[0]!.look();
    const summed = await instances[1]!.look();
    assert.ok(existsSync(join(shared, 'split', 'instances', 'pod-0.json')));
    assert.ok(existsSync(join(shared, 'split', 'instances', 'pod-1.json')));
    assert.ok(!existsSync(join(shared, 'split', 'state.json')), 'named instances never write the single-instance file');

    assert.deepEqual(summed.instances, ['pod-1', 'pod-0']);
    assert.equal(summed.outcomes, alone.outcomes);
    assert.ok(alone.outcomes > 1_000);
    // Equal, but for NDCG's float sums taken in another order.
    const exact = <T extends { ndcg: number | null }>(s: T) => ({ ...s, ndcg: s.ndcg === null ? null : Number(s.ndcg.toFixed(12)) });
    assert.deepEqual(exact(summed.champion), exact(alone.champion));
    assert.deepEqual(summed.challengers.map(exact), alone.challengers.map(exact));
    assert.deepEqual(exact(summed.holdout!), exact(alone.holdout!));
    // Each instance alone saw part of it.
    for (const rt of instances) assert.ok(rt.accounting.counts('a').trials < alone.champion.outcomes);
    assert.match(formatStatus(summed), /^counts summed over 2 instances: pod-1, pod-0$/m);
    assert.equal(readLatestReport(shared, 'split')?.outcomes, alone.outcomes);

    // A restart of one instance reads its own file back, and the sum stays the same.
    const restarted = runtime(shared, 'pod-0');
    assert.deepEqual(restarted.accounting.snapshot(), instances[0]!.accounting.snapshot());
    assert.equal((await restarted.look()).outcomes, alone.outcomes);
  });

  it('a decision one instance takes holds in the other at its next look, applied once', async () => {
    const shared = join(root, 'decide');
    const promoted: string[] = [];
    const decisive = { test: { minOutcomesPerArm: 50 }, holdoutShare: 0 };
    const [first, second] = [runtime(shared, 'pod-0', decisive, promoted), runtime(shared, 'pod-1', decisive, promoted)];
    // The challenger's lists hold the user's next item, the champion's never do: a clear win, on pod-0's users only.
    let id = 0;
    const users = [...Array(600).keys()].map((u) => `user-${u}`).filter((u) => owner(u) === 0);
    for (const userId of users) {
      const arm = assignArm(userId, first.experiment).arm;
      const a: Interaction = { eventId: `d${id++}`, userId, itemId: 'x', type: 'view', value: null, timestampMs: id, context: {} };
      first.observe(a);
      first.served(a, arm === 'b' ? ['hit'] : ['miss'], first.router.route(userId).cell);
      first.observe({ ...a, eventId: `d${id++}`, itemId: 'hit' });
    }
    const decided = await first.look();
    assert.equal(decided.decision, 'promote');
    assert.deepEqual(decided.applied.map((x) => `${x.action} ${x.arm}`), ['promoted b']);

    assert.equal(second.router.concludedWith, null, 'nothing is shared until the next look');
    const followed = await second.look();
    assert.equal(second.router.concludedWith, 'b');
    assert.deepEqual(followed.applied, [], 'the other instance does not apply it again');
    assert.deepEqual(promoted, ['b'], 'published once');
    assert.deepEqual(followed.serving, { a: false, b: true });
    assert.equal(second.router.route('user-1').arm, 'b');
  });
});
