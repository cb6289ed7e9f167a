import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { DistillReport } from '../../src/distill/report.ts';
import { gate } from '../../src/distill/gate.ts';
import { runDistill } from '../../src/distill/run.ts';
import type { TrainerRequest } from '../../src/distill/trainer.ts';
import { tempRegistry } from '../star/helpers.ts';
import { baseOptions, breakParity, fixtureTrainer, labelled, oracle, tempDir, verifiedOracles, writeDataset, type Quality } from './helpers.ts';

describe('distill gate', () => {
  it('publishes only a win by more than the margin; a tie never wins at a margin ≥ 0', () => {
    assert.equal(gate(0.5, 0.52, 0.01).publish, true);
    assert.equal(gate(0.5, 0.51, 0.01).publish, false, 'a gain equal to the margin is not more than it');
    assert.equal(gate(0.5, 0.5, 0).publish, false);
    assert.equal(gate(0.5, 0.4, 0.01).publish, false);
    assert.equal(gate(0.5, 0.45, -0.1).publish, true, 'a negative margin lets a slightly worse model through');
    assert.ok(Math.abs(gate(0.5, 0.52, 0.01).gain - 0.02) < 1e-12);
    assert.throws(() => gate(Number.NaN, 0.5, 0), /finite/);
  });

  /** A data set of 40 trajectories, a registry (with `champion-1` serving, or empty), one loop run. */
  async function scenario(
    opts: { champion: boolean; challenger: Quality; championQuality?: Quality; tamper?: (dir: string) => void },
    check: (report: DistillReport, ctx: { registryDir: string; stateDir: string; calls: TrainerRequest[] }) => void,
  ): Promise<void> {
    const data = tempDir('distill-data-');
    const registry = opts.champion ? tempRegistry(['champion-1']) : tempDir('distill-registry-');
    try {
      await writeDataset(join(data.dir, 'dataset'), Array.from({ length: 40 }, (_, i) => labelled(i)));
      const calls: TrainerRequest[] = [];
      const stateDir = join(data.dir, 'state');
      const report = await runDistill(
        baseOptions({ stateDir, registryDir: registry.dir, trajectoriesDir: join(data.dir, 'dataset') }),
        {
          train: fixtureTrainer(calls, opts.tamper),
          loadModel: verifiedOracles(registry.dir, (v) => (v === 'star-champion-1' ? (opts.championQuality ?? 'order') : opts.challenger)),
          baseline: () => oracle('baseline-test', 'order'),
        },
      );
      check(report, { registryDir: registry.dir, stateDir, calls });
      // The report on disk is the one returned, and one summary line was appended.
      assert.deepEqual(JSON.parse(readFileSync(join(stateDir, 'reports', `${report.runId}.json`), 'utf8')), report);
      assert.equal(readFileSync(join(stateDir, 'decisions.log'), 'utf8').trim().split('\n').length, 1);
    } finally {
      data.cleanup();
      registry.cleanup();
    }
  }

  it('a challenger that beats the baseline champion by the margin is published, atomically, and CURRENT names it', async () => {
    await scenario({ champion: false, challenger: 'best' }, (report, { registryDir, calls }) => {
      assert.equal(report.decision, 'published', report.summary);
      assert.equal(calls.length, 1);
      assert.equal(report.champion?.kind, 'baseline');
      assert.equal(report.champion?.metrics?.hr1, 0);
      assert.equal(report.challenger?.metrics?.avgHr, 1);
      assert.ok(report.gate!.gain > report.gate!.margin);
      const version = report.published!.version;
      assert.equal(readFileSync(join(registryDir, 'CURRENT'), 'utf8'), `${version}\n`);
      assert.equal(JSON.parse(readFileSync(join(registryDir, version, 'star.json'), 'utf8')).version, version);
      // No staging folder or temp pointer is left behind.
      assert.deepEqual(readdirSync(registryDir).sort(), [version, 'CURRENT'].sort());
      assert.match(report.summary, /published .*gain \+0\.\d{4} > margin 0\.0100/);
    });
  });

  it('a challenger that loses is not published and the champion is untouched', async () => {
    await scenario({ champion: true, challenger: 'worst' }, (report, { registryDir }) => {
      assert.equal(report.decision, 'rejected', report.summary);
      assert.equal(report.champion?.version, 'star-champion-1');
      assert.ok(report.gate!.gain < 0);
      assert.equal(report.published, null);
      assert.equal(readFileSync(join(registryDir, 'CURRENT'), 'utf8').trim(), 'champion-1');
      assert.deepEqual(readdirSync(registryDir).sort(), ['CURRENT', 'champion-1']);
    });
  });

  it('a tie is not published', async () => {
    await scenario({ champion: true, challenger: 'order' }, (report, { registryDir }) => {
      assert.equal(report.decision, 'rejected', report.summary);
      assert.equal(report.gate!.gain, 0);
      assert.deepEqual(report.champion?.metrics, report.challenger?.metrics);
      assert.equal(readFileSync(join(registryDir, 'CURRENT'), 'utf8').trim(), 'champion-1');
    });
  });

  it('a win smaller than the margin is not published', async () => {
    // best vs best: gain 0; `order` champion vs `best` challenger would win, so use a near-perfect champion.
    await scenario({ champion: true, challenger: 'best', championQuality: 'best' }, (report) => {
      assert.equal(report.decision, 'rejected');
      assert.equal(report.gate!.gain, 0);
    });
  });

  it('a challenger that fails the parity check is refused, even when it would win, and nothing is published', async () => {
    await scenario({ champion: true, challenger: 'best', tamper: breakParity }, (report, { registryDir }) => {
      assert.equal(report.decision, 'refused', report.summary);
      assert.equal(report.code, 'MODEL_PARITY_MISMATCH');
      assert.equal(report.champion, null, 'no evaluation ran');
      assert.equal(readFileSync(join(registryDir, 'CURRENT'), 'utf8').trim(), 'champion-1');
      assert.deepEqual(readdirSync(registryDir).sort(), ['CURRENT', 'champion-1']);
      assert.ok(!existsSync(join(registryDir, report.challenger!.version)));
    });
  });
});
