import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors/index.ts';
import { assignArm, cellOf } from '../../src/experiments/assign.ts';
import { compileExperiment, HOLDOUT, type Experiment } from '../../src/experiments/definition.ts';
import { twoArms } from './helpers.ts';

const N = 100_000;
const ids = Array.from({ length: N }, (_, i) => `user-${i}`);

function arms(experiment: Experiment): string[] {
  return ids.map((id) => cellOf(assignArm(id, experiment)));
}

function shares(cells: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const c of cells) counts.set(c, (counts.get(c) ?? 0) + 1);
  return new Map([...counts].map(([k, v]) => [k, v / cells.length]));
}

function threeArms(salt = 'salt-1', split: readonly [number, number, number] = [0.5, 0.3, 0.2]): Experiment {
  return compileExperiment({
    name: 'exp-test',
    salt,
    arms: [
      { name: 'a', scorer: { kind: 'baseline' }, share: split[0] },
      { name: 'b', scorer: { kind: 'online' }, share: split[1] },
      { name: 'c', scorer: { kind: 'star', version: 'star-3' }, share: split[2] },
    ],
  });
}

describe('experiment definition', () => {
  it('fills defaults, resolves the champion to the first arm and freezes', () => {
    const e = twoArms();
    assert.equal(e.champion, 'a');
    assert.deepEqual(e.challengers, ['b']);
    assert.equal(e.holdoutShare, 0);
    assert.equal(e.k, 10);
    assert.equal(e.test.alpha, 0.05);
    assert.equal(e.guardrails.maxP99LatencyMs, 250);
    assert.ok(Object.isFrozen(e) && Object.isFrozen(e.arms[0]) && Object.isFrozen(e.test));
    assert.equal(twoArms({ champion: 'b' }).challengers[0], 'a');
  });

  it('rejects bad definitions with an error that names the field', () => {
    const bad = (overrides: Record<string, unknown>, field: RegExp): void => {
      assert.throws(() => twoArms(overrides as never), (err: unknown) => err instanceof ConfigError && field.test(err.field));
    };
    bad({ arms: [{ name: 'a', scorer: { kind: 'baseline' }, share: 0.5 }, { name: 'b', scorer: { kind: 'online' }, share: 0.4 }] }, /^experiment\.arms$/);
    bad({ arms: [{ name: 'a', scorer: { kind: 'baseline' }, share: 0.5 }, { name: 'a', scorer: { kind: 'online' }, share: 0.5 }] }, /arms\.1\.name/);
    bad({ arms: [{ name: 'a', scorer: { kind: 'baseline' }, share: 0.5 }, { name: HOLDOUT, scorer: { kind: 'online' }, share: 0.5 }] }, /arms\.1\.name/);
    bad({ arms: [{ name: 'a', scorer: { kind: 'baseline' }, share: 1 }] }, /arms/);
    bad({ arms: [{ name: 'a', scorer: { kind: 'star' }, share: 0.5 }, { name: 'b', scorer: { kind: 'online' }, share: 0.5 }] }, /arms\.0\.scorer/);
    bad({ champion: 'zz' }, /champion/);
    bad({ holdoutShare: 0.9 }, /holdoutShare/);
    bad({ name: 'Bad Name' }, /name/);
    bad({ test: { alpha: 0 } }, /test\.alpha/);
    bad({ surprise: 1 }, /experiment/);
  });
});

describe('assignArm', () => {
  it('is stable: the same user gets the same arm from separately compiled definitions', () => {
    const first = threeArms();
    const second = threeArms();
    for (const id of ids.slice(0, 5_000)) assert.deepEqual(assignArm(id, first), assignArm(id, second));
    const one = assignArm('user-42', first);
    assert.deepEqual(one.scorer, first.arms.find((a) => a.name === one.arm)!.scorer);
    assert.equal(one.holdout, false);
  });

  it('keeps the shares within tolerance over 100k ids', () => {
    const s = shares(arms(threeArms()));
    // 4σ of a share near 0.5 over 100k draws is 0.0063.
    assert.ok(Math.abs(s.get('a')! - 0.5) < 0.007, `a ${s.get('a')}`);
    assert.ok(Math.abs(s.get('b')! - 0.3) < 0.007, `b ${s.get('b')}`);
    assert.ok(Math.abs(s.get('c')! - 0.2) < 0.007, `c ${s.get('c')}`);
  });

  it('keeps a holdout share on the champion, counted apart', () => {
    const e = compileExperiment({ ...inputOf(threeArms()), holdoutShare: 0.1 });
    const assignments = ids.map((id) => assignArm(id, e));
    const held = assignments.filter((a) => a.holdout);
    assert.ok(Math.abs(held.length / N - 0.1) < 0.004, `holdout ${held.length / N}`);
    assert.ok(held.every((a) => a.arm === 'a' && a.scorer.kind === 'baseline'));
    const rest = shares(assignments.filter((a) => !a.holdout).map(cellOf));
    assert.ok(Math.abs(rest.get('a')! - 0.5) < 0.008 && Math.abs(rest.get('c')! - 0.2) < 0.008, 'the arms share the rest as declared');
    // Raising the holdout moves users only into it; the others keep their arms.
    const wider = compileExperiment({ ...inputOf(threeArms()), holdoutShare: 0.2 });
    ids.forEach((id, i) => {
      const before = assignments[i]!;
      const after = assignArm(id, wider);
      if (before.holdout) assert.ok(after.holdout, 'a holdout user stays held out');
      else if (!after.holdout) assert.equal(after.arm, before.arm);
    });
  });

  it('reshuffles when the salt changes', () => {
    const before = arms(threeArms('salt-1'));
    const after = arms(threeArms('salt-2'));
    const moved = before.filter((c, i) => c !== after[i]).length / N;
    // Independent draws disagree with probability 1 − Σ share² = 1 − 0.38.
    assert.ok(Math.abs(moved - 0.62) < 0.01, `moved ${moved}`);
  });

  it('adding an arm moves only users into it, the least any scheme can move', () => {
    // Property: weighted rendezvous hashing. Going from a/b 50/50 to a/b/c in thirds, a user either keeps
    // their arm or moves to the new arm c; nobody moves between a and b. A third of the users move.
    const before = arms(twoArms());
    const after = arms(threeArms('salt-1', [1 / 3, 1 / 3, 1 / 3]));
    let moved = 0;
    before.forEach((c, i) => {
      if (after[i] === c) return;
      assert.equal(after[i], 'c', `user-${i} moved from ${c} to ${after[i]}`);
      moved++;
    });
    assert.ok(Math.abs(moved / N - 1 / 3) < 0.007, `moved ${moved / N}`);
  });

  it('retiring an arm moves only its users; growing a share moves users only into that arm (others keep their ratios)', () => {
    const three = arms(threeArms());
    const retired = arms(twoArms({ arms: [{ name: 'a', scorer: { kind: 'baseline' }, share: 5 / 7 }, { name: 'c', scorer: { kind: 'online' }, share: 2 / 7 }] }));
    three.forEach((c, i) => {
      if (c !== 'b') assert.equal(retired[i], c);
    });
    const grown = arms(threeArms('salt-1', [0.4375, 0.2625, 0.3]));
    let moved = 0;
    three.forEach((c, i) => {
      if (grown[i] === c) return;
      assert.equal(grown[i], 'c');
      moved++;
    });
    assert.ok(Math.abs(moved / N - 0.1) < 0.005, `moved ${moved / N}`);
  });
});

function inputOf(e: Experiment): Record<string, unknown> {
  return { name: e.name, salt: e.salt, arms: e.arms.map((a) => ({ ...a })) };
}
