/**
 * The composition root: config → adapters → stages → pipeline. The only module that knows which adapter
 * backs which port; everything else receives its dependencies. CLI commands call the builders here.
 */
import type { Config } from './config/schema.ts';
import { createCodecs, type Codecs } from './eventlog/codec/avro.ts';
import type { LogRecord } from './eventlog/port.ts';
import type { Logger } from './logging/logger.ts';
import { createRng } from './data/random.ts';
import { NO_INSTRUMENTS, type PipelineInstruments } from './pipeline/instruments.ts';
import { BatchProcessor } from './pipeline/processor.ts';
import type { CaseOptions } from './pipeline/recommend.ts';
import { CollaborativeLearner, NegativeSampler } from './stages/embeddings/index.ts';
import { loadCstTemplates, type CstTemplates } from './stages/evidence/templates.ts';
import { UserRateLimiter } from './stages/publish/index.ts';
import type { ItemMerger } from './stages/state/store-view.ts';
import { createBaselineScorer } from './star/baseline/scorer.ts';
import type { Scorer } from './star/port.ts';
import { createEmbeddedStore } from './store/embedded/index.ts';
import { mergeItemDelta } from './store/item-merge.ts';
import type { VectorStore } from './store/port.ts';

const NEGATIVE_POOL = 20_000;

export function buildStore(config: Config): VectorStore {
  const s = config.store;
  if (s.kind === 'qdrant') throw new Error('store.kind=qdrant is wired in src/store/qdrant (see README)');
  return createEmbeddedStore({ ...s, ...s.embedded, path: s.embedded.path });
}

export function caseOptions(config: Config): CaseOptions {
  return {
    candidates: config.candidates,
    evidence: {
      ...config.evidence,
      cooccurrenceWindow: config.store.cooccurrenceWindow,
      popularityShortHalfLifeMs: config.store.popularityShortHalfLifeMs,
      popularityLongHalfLifeMs: config.store.popularityLongHalfLifeMs,
    },
  };
}

/** The learning half of the engine: what every consumer of the interaction stream shares. */
export interface Engine {
  readonly config: Config;
  readonly store: VectorStore;
  readonly mergeItem: ItemMerger;
  readonly learner: CollaborativeLearner;
  readonly negatives: NegativeSampler;
  readonly templates: CstTemplates;
  readonly codecs: Codecs;
  readonly caseOptions: CaseOptions;
}

export function buildEngine(config: Config, store: VectorStore = buildStore(config)): Engine {
  const rng = createRng(config.embeddings.seed);
  const learner = new CollaborativeLearner(
    {
      dimension: config.store.dimension,
      learningRate: config.embeddings.learningRate,
      regularization: config.embeddings.regularization,
      initScale: config.embeddings.initScale,
      userHistoryLength: config.store.userHistoryLength,
      cooccurrenceWindow: config.store.cooccurrenceWindow,
      consumedFilterBytes: config.store.consumedFilterBytes,
    },
    rng.fork('init'),
  );
  return {
    config,
    store,
    mergeItem: (profile, delta) => mergeItemDelta(profile, delta, config.store),
    learner,
    negatives: new NegativeSampler(NEGATIVE_POOL, rng.fork('negatives')),
    templates: loadCstTemplates(),
    codecs: createCodecs(),
    caseOptions: caseOptions(config),
  };
}

export interface ProcessorWiring {
  readonly instruments?: PipelineInstruments;
  readonly scorer?: () => Scorer;
  readonly logger?: Logger;
}

export function buildProcessor(engine: Engine, wiring: ProcessorWiring = {}): BatchProcessor {
  const config = engine.config;
  const baseline = createBaselineScorer();
  const decode = (record: LogRecord) => engine.codecs.interaction.decode(record.value);
  return new BatchProcessor(
    {
      store: engine.store,
      mergeItem: engine.mergeItem,
      decode,
      learner: engine.learner,
      negatives: engine.negatives,
      scorer: wiring.scorer ?? (() => baseline),
      templates: engine.templates,
      rateLimiter: new UserRateLimiter(config.publish.minIntervalPerUserMs),
      instruments: wiring.instruments ?? NO_INSTRUMENTS,
    },
    {
      rankingEnabled: config.pipeline.rankingEnabled,
      topK: config.ranking.topK,
      negatives: config.embeddings.negatives,
      maxEventAgeMs: config.pipeline.maxEventAgeMs,
      maxFutureSkewMs: config.pipeline.maxFutureSkewMs,
      ...engine.caseOptions,
    },
  );
}
