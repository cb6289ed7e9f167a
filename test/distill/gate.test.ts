import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { loadCstTemplates } from '../../src/cst/index.ts';
import type { DistillReport, PublishTo } from '../../src/distill/report.ts';
import { compileExperiment } from '../../src/experiments/definition.ts';
import { openArmScorers } from '../../src/experiments/scorers.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { createBaselineScorer } from '../../src/star/baseline/scorer.ts';
import { staticScorerHandle } from '../../src/star/registry/registry.ts';
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
    opts: { champion: boolean; challenger: Quality; championQuality?: Quality; tamper?: (dir: string) => void; publishTo?: PublishTo },
    check: (report: DistillReport, ctx: { registryDir: string; stateDir: string; calls: TrainerRequest[] }) => void | Promise<void>,
  ): Promise<void> {
    const data = tempDir('distill-data-');
    const registry = opts.champion ? tempRegistry(['champion-1']) : tempDir('distill-registry-');
    try {
      await writeDataset(join(data.dir, 'dataset'), Array.from({ length: 40 }, (_, i) => labelled(i)));
      const calls: TrainerRequest[] = [];
      const stateDir = join(data.dir, 'state');
      const report = await runDistill(
        { ...baseOptions({ stateDir, registryDir: registry.dir, trajectoriesDir: join(data.dir, 'dataset') }), publishTo: opts.publishTo ?? 'champion', experimentShare: 0.2 },
        {
          train: fixtureTrainer(calls, opts.tamper),
          loadModel: verifiedOracles(registry.dir, (v) => (v === 'star-champion-1' ? (opts.championQuality ?? 'order') : opts.challenger)),
          baseline: () => oracle('baseline-test', 'order'),
        },
      );
      await check(report, { registryDir: registry.dir, stateDir, calls });
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

  it('into an experiment: the winner goes into the registry beside the champion, CURRENT stays, and the written section runs them side by side', async () => {
    await scenario({ champion: true, challenger: 'best', publishTo: 'experiment' }, async (report, { registryDir }) => {
      assert.equal(report.decision, 'published', report.summary);
      const version = report.published!.version;
      assert.equal(report.published!.into, 'experiment');
      assert.equal(readFileSync(join(registryDir, 'CURRENT'), 'utf8').trim(), 'champion-1', 'the champion keeps serving');
      assert.deepEqual(readdirSync(registryDir).sort(), ['CURRENT', 'champion-1', version].sort());
      const file = report.published!.experiment!;
      assert.match(report.reason, new RegExp(`STARSTREAM_EXPERIMENT="\\$\\(cat ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)" starstream run`));
      // The section as the reason says to pass it: the champion's version against the challenger's, 80/20.
      const config = loadConfig({ env: { STARSTREAM_EXPERIMENT: readFileSync(file, 'utf8') }, overrides: { ranking: { modelDir: registryDir } } });
      const experiment = compileExperiment(config.experiment);
      assert.deepEqual(
        experiment.arms.map((a) => [a.name, a.scorer, a.share]),
        [['champion', { kind: 'star', version: 'champion-1' }, 0.8], ['challenger', { kind: 'star', version }, 0.2]],
      );
      assert.equal(experiment.champion, 'champion');
      // Both arms open from the registry (files, templates, parity): what `starstream run` would serve.
      const arms = await openArmScorers(config, experiment, staticScorerHandle(createBaselineScorer()), loadCstTemplates(), silentLogger());
      try {
        assert.deepEqual([...arms.sources].map(([name, scorer]) => [name, scorer().modelVersion]), [['champion', 'star-champion-1'], ['challenger', `star-${version}`]]);
      } finally {
        await arms.close();
      }
    });
  });

  it('into an experiment with no champion in the registry: the baseline is the control arm', async () => {
    await scenario({ champion: false, challenger: 'best', publishTo: 'experiment' }, (report, { registryDir }) => {
      assert.equal(report.decision, 'published', report.summary);
      assert.equal(existsSync(join(registryDir, 'CURRENT')), false, 'nothing named CURRENT');
      const section = JSON.parse(readFileSync(report.published!.experiment!, 'utf8')) as { arms: { scorer: unknown }[] };
      assert.deepEqual(section.arms[0]!.scorer, { kind: 'baseline' });
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
