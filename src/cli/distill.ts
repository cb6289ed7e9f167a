import type { Config } from '../config/schema.ts';
import type { PublishTo } from '../distill/report.ts';
import { runDistill, type DistillDeps } from '../distill/run.ts';
import { ConfigError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { loadCstTemplates } from '../cst/index.ts';
import { loadPromptSpec } from '../star/prompt/spec.ts';

/**
 * `starstream distill`: one turn of the distillation loop (`src/distill/run.ts`) from `config.distill`, with
 * the registry at `distill.registryDir` (else `ranking.modelDir`), the data set at `distill.trajectoriesDir`
 * (else `sampling.dataset.dir`), and the serving side's parity tolerance and execution provider. Trainer
 * output and progress go to stderr; the one-line summary to stdout. Exit code: 0 when the run decided
 * (published, rejected, skipped), 1 when the challenger was refused by the registry's checks (a trainer/server
 * mismatch someone must look at) or the run failed.
 */
export interface DistillCliOptions {
  readonly force?: boolean;
  readonly margin?: number;
  /** `--into`: overrides `distill.publishTo`. */
  readonly publishTo?: PublishTo;
}

export async function distill(config: Readonly<Config>, logger: Logger, cli: DistillCliOptions = {}, deps: DistillDeps = {}): Promise<number> {
  const d = config.distill;
  const registryDir = d.registryDir ?? config.ranking.modelDir;
  if (!registryDir) {
    throw new ConfigError('distill.registryDir', 'unset, and so is ranking.modelDir: distill needs a model registry to publish into');
  }
  const report = await runDistill(
    {
      stateDir: d.stateDir,
      trajectoriesDir: d.trajectoriesDir ?? config.sampling.dataset.dir,
      casesFile: d.casesFile ?? null,
      registryDir,
      margin: cli.margin ?? d.margin,
      holdoutShare: d.holdoutShare,
      minHoldoutCases: d.minHoldoutCases,
      preset: d.preset,
      trainerSettings: d.trainerSettings,
      ...(d.python ? { python: d.python } : {}),
      keepRuns: d.keepRuns,
      publishTo: cli.publishTo ?? d.publishTo,
      experimentShare: d.experimentShare,
      force: cli.force === true,
      spec: loadPromptSpec(),
      cstTemplateVersion: loadCstTemplates().version,
      parityTolerance: config.ranking.parityTolerance,
      scorer: { executionProvider: config.ranking.executionProvider, intraOpThreads: config.ranking.intraOpThreads, logger },
      logger,
    },
    deps,
  );
  process.stdout.write(`${report.summary}\n`);
  return report.decision === 'refused' ? 1 : 0;
}
