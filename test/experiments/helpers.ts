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
