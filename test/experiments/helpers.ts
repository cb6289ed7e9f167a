import { compileExperiment, type Experiment, type ExperimentInput } from '../../src/experiments/definition.ts';

/** A two-arm experiment (champion `a` on baseline, challenger `b` on a STAR version), 50/50 unless overridden. */
export function twoArms(overrides: Partial<ExperimentInput> = {}): Experiment {
  return compileExperiment({
    name: 'exp-test',
    salt: 'salt-1',
    arms: [
      { name: 'a', scorer: { kind: 'baseline' }, share: 0.5 },
      { name: 'b', scorer: { kind: 'star', version: 'star-2' }, share: 0.5 },
    ],
    ...overrides,
  });
}

/**
 * The `experiment` config section of the running-pipeline tests: champion `control` on the baseline, challenger
 * `blend` on an online blend, 50/50; no decision (the counts are what is checked) and no periodic looks.
 */
export function baselineVsBlend(name: string, salt: string, stateDir: string) {
  return {
    name,
    salt,
    arms: [
      { name: 'control', scorer: { kind: 'baseline' as const }, share: 0.5 },
      { name: 'blend', scorer: { kind: 'online' as const }, share: 0.5 },
    ],
    test: { minOutcomesPerArm: 100_000 },
    stateDir,
    lookEveryMs: 0,
  };
}

/** As {@link baselineVsBlend}, the challenger `star` serving `version` of the registry at `ranking.modelDir`. */
export function baselineVsStar(name: string, salt: string, stateDir: string, version: string) {
  return {
    ...baselineVsBlend(name, salt, stateDir),
    arms: [
      { name: 'control', scorer: { kind: 'baseline' as const }, share: 0.5 },
      { name: 'star', scorer: { kind: 'star' as const, version }, share: 0.5 },
    ],
  };
}
