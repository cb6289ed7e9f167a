import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExperimentInput } from '../experiments/definition.ts';
import { writeAtomically } from '../util/files.ts';

/**
 * Publishing a challenger into an online experiment instead of straight to the champion
 * (`distill.publishTo=experiment`): the offline gate has passed, the version is in the registry, `CURRENT` is
 * left alone, and live traffic decides (`src/experiments/`). This module writes the `experiment` config section
 * that runs it: the serving champion (its registry version, or the baseline ranker when the registry has none)
 * against the new version. The experiment's own promotion points `CURRENT` at the challenger if it wins.
 */

/** The `experiment` section that puts `version` against `champion` (null: the baseline), `share` to the challenger. */
export function challengerExperiment(version: string, champion: { readonly version: string } | null, share: number): ExperimentInput {
  return {
    name: experimentName(version),
    // A fresh salt per challenger: each experiment shuffles users anew, so no arm inherits another's users.
    salt: `distill-${version}`,
    arms: [
      { name: 'champion', scorer: champion ? { kind: 'star', version: champion.version } : { kind: 'baseline' }, share: round(1 - share) },
      { name: 'challenger', scorer: { kind: 'star', version }, share },
    ],
  };
}

/** Writes the section as `<stateDir>/experiments/<version>.json`; returns its path. */
export async function writeChallengerExperiment(stateDir: string, version: string, section: ExperimentInput): Promise<string> {
  const dir = join(stateDir, 'experiments');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${version}.json`);
  await writeAtomically(path, `${JSON.stringify(section, null, 2)}\n`);
  return path;
}

/** Experiment names are metric labels (`NAME_PATTERN`): lower case, at most 63 characters. */
function experimentName(version: string): string {
  return `distill-${version.toLowerCase().replace(/[^a-z0-9._-]/g, '-')}`.slice(0, 63);
}

const round = (x: number): number => Math.round(x * 1e9) / 1e9;
