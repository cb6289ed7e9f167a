import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { CstTemplates } from '../cst/index.ts';
import { setChampion } from '../distill/publish.ts';
import { ConfigError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { createBaselineScorer } from '../star/baseline/scorer.ts';
import { createOnlineScorer, onlineBlendOptions } from '../star/online/scorer.ts';
import type { Scorer } from '../star/port.ts';
import { starRegistryOptions } from '../star/registry/open.ts';
import { loadVerifiedModel, StarRegistry, type ScorerHandle } from '../star/registry/registry.ts';
import type { Arm, Experiment } from './definition.ts';

/**
 * The arms' scorers, opened from their `ScorerRef`s for the composition root:
 *
 * | ref | serves |
 * |---|---|
 * | `baseline` | the collaborative baseline ranker (stateless: one instance) |
 * | `online` | an online blend of its own (it learns from its arm's lists only) |
 * | `star` `CURRENT` | the registry at `ranking.modelDir`, as it swaps (the pipeline's own handle when it is that registry) |
 * | `star` version | that version folder of the registry, loaded and parity-checked once, never swapped |
 *
 * Promotion ({@link ArmScorers.promote}): a STAR version becomes the registry's `CURRENT` (`setChampion`), and
 * the registries this process holds re-read it now (the others at their next poll). Other arms have no
 * registry: the decision is recorded, the winner serves this instance, and the note says which config to set.
 */

export interface ArmScorers {
  readonly sources: ReadonlyMap<string, () => Scorer>;
  promote(arm: Arm): Promise<string>;
  /** Closes what was opened here (not `base`). */
  close(): Promise<void>;
}

export async function openArmScorers(
  config: Readonly<Config>,
  experiment: Experiment,
  base: ScorerHandle,
  templates: CstTemplates,
  logger: Logger,
): Promise<ArmScorers> {
  const sources = new Map<string, () => Scorer>();
  const owned: { close(): Promise<void> }[] = [];
  const modelDir = config.ranking.modelDir;
  let registry: StarRegistry | null = base instanceof StarRegistry ? base : null;
  const log = logger.child({ component: 'experiment-arms' });
  try {
    for (const [i, arm] of experiment.arms.entries()) {
      const ref = arm.scorer;
      const field = `experiment.arms.${i}.scorer`;
      if (ref.kind === 'baseline') {
        const scorer = createBaselineScorer();
        sources.set(arm.name, () => scorer);
      } else if (ref.kind === 'online') {
        const scorer = createOnlineScorer(onlineBlendOptions(config.ranking), { logger: log.child({ arm: arm.name }) });
        owned.push(scorer);
        sources.set(arm.name, () => scorer);
      } else {
        if (!modelDir) throw new ConfigError(field, 'a star arm needs ranking.modelDir (the STAR model registry)');
        if (ref.version === 'CURRENT') {
          if (!registry) {
            const opened = await StarRegistry.open(starRegistryOptions(config, modelDir, templates, log));
            owned.push(opened);
            registry = opened;
          }
          const r = registry;
          sources.set(arm.name, () => r.current());
        } else {
          const { scorer } = await loadVerifiedModel(join(modelDir, ref.version), starRegistryOptions(config, modelDir, templates, log));
          owned.push(scorer);
          sources.set(arm.name, () => scorer);
        }
      }
    }
  } catch (err) {
    await Promise.allSettled(owned.map((o) => o.close()));
    throw err;
  }
  const registries = (): StarRegistry[] => [...new Set([base, ...owned].filter((h): h is StarRegistry => h instanceof StarRegistry))];
  return {
    sources,
    async promote(arm) {
      const ref = arm.scorer;
      if (ref.kind !== 'star') {
        return `not published: a ${ref.kind} arm has no model registry; ${arm.name} serves every user of this instance, set ranking.scorer=${ref.kind} to keep it after a restart without the experiment`;
      }
      if (ref.version === 'CURRENT') return `${arm.name} serves the registry's CURRENT already`;
      const published = await setChampion(modelDir!, ref.version);
      for (const r of registries()) await r.refresh();
      return `published ${published.version} as CURRENT of ${modelDir}`;
    },
    async close() {
      await Promise.all(owned.map((o) => o.close()));
    },
  };
}
