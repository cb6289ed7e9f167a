import type { Config } from '../../config/schema.ts';
import type { Logger } from '../../logging/logger.ts';
import type { CstTemplates } from '../../cst/index.ts';
import { createBaselineScorer } from '../baseline/scorer.ts';
import { createOnlineScorer, onlineBlendOptions } from '../online/scorer.ts';
import type { OnnxScorerOptions } from '../onnx/scorer.ts';
import { loadPromptSpec } from '../prompt/spec.ts';
import { StarRegistry, staticScorerHandle, type ScorerHandle, type StarRegistryOptions } from './registry.ts';

/**
 * The scorer the pipeline ranks with, from `config.ranking`: the STAR registry at `modelDir` when
 * `scorer = star`, else the baseline ranker (also the fallback when no STAR model is configured, logged).
 * The composition root calls this once and hands `() => handle.current()` to the processor.
 */
export async function openScorerHandle(
  config: Readonly<Config>,
  templates: CstTemplates,
  logger: Logger,
  hooks: Pick<StarRegistryOptions, 'onRefused' | 'onSwapped'> & Pick<OnnxScorerOptions, 'onInference'> = {},
): Promise<ScorerHandle> {
  const r = config.ranking;
  if (r.scorer === 'online') {
    return staticScorerHandle(createOnlineScorer(onlineBlendOptions(r), { logger: logger.child({ component: 'online-blend' }) }));
  }
  if (r.scorer !== 'star' || !r.modelDir) {
    if (r.scorer === 'star') logger.warn({ code: 'STAR_NOT_CONFIGURED' }, 'ranking.scorer is star but ranking.modelDir is unset: the baseline ranker serves');
    return staticScorerHandle(createBaselineScorer());
  }
  return StarRegistry.open(starRegistryOptions(config, r.modelDir, templates, logger, hooks));
}

/** The registry options `config.ranking` names, for the registry (or single model) at `dir`. */
export function starRegistryOptions(
  config: Readonly<Config>,
  dir: string,
  templates: CstTemplates,
  logger: Logger,
  hooks: Pick<StarRegistryOptions, 'onRefused' | 'onSwapped'> & Pick<OnnxScorerOptions, 'onInference'> = {},
): StarRegistryOptions {
  const r = config.ranking;
  return {
    dir,
    spec: loadPromptSpec(),
    cstTemplateVersion: templates.version,
    cstTemplates: templates,
    pollMs: r.registryPollMs,
    parityTolerance: r.parityTolerance,
    retireGraceMs: r.retireGraceMs,
    scorer: {
      executionProvider: r.executionProvider,
      maxBatchCandidates: r.microBatchMaxCandidates,
      maxWaitMs: r.microBatchMaxWaitMs,
      intraOpThreads: r.intraOpThreads,
      logger,
      ...(hooks.onInference ? { onInference: hooks.onInference } : {}),
    },
    logger,
    ...(hooks.onRefused ? { onRefused: hooks.onRefused } : {}),
    ...(hooks.onSwapped ? { onSwapped: hooks.onSwapped } : {}),
  };
}
