/**
 * The composition root: config → adapters → stages → pipeline. The only module that knows which adapter
 * backs which port; everything else receives its dependencies. CLI commands call the builders here.
 */
import { Registry } from 'prom-client';
import type { Config } from './config/schema.ts';
import { createFraming, type Framing } from './eventlog/codec/framing.ts';
import { createEventLog } from './eventlog/create.ts';
import type { EventLog } from './eventlog/port.ts';
import { topicNames, type TopicRole } from './eventlog/topics.ts';
import { createPipelineMetrics, type PipelineMetrics } from './ops/metrics.ts';
import { PipelineRunner } from './pipeline/runner.ts';
import type { InteractionDecoder } from './stages/ingest/index.ts';
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
import { openScorerHandle } from './star/registry/open.ts';
import type { ScorerHandle } from './star/registry/registry.ts';
import { createEmbeddedStore } from './store/embedded/index.ts';
import { applyItemDelta, cloneItem, type MutableItemProfile } from './store/item-merge.ts';
import type { VectorStore } from './store/port.ts';
import { createQdrantStore } from './store/qdrant/index.ts';
import type { OnRequest } from './store/qdrant/adapter.ts';

const NEGATIVE_POOL = 20_000;

export function buildStore(config: Config, logger?: Logger, onRequest?: OnRequest): VectorStore {
  const s = config.store;
  if (s.kind === 'qdrant') return createQdrantStore({ config: s, ...(logger ? { log: logger.child({ component: 'qdrant' }) } : {}), ...(onRequest ? { onRequest } : {}) });
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
    mergeItem: {
      clone: (profile, itemId) => cloneItem(profile, itemId, config.store.dimension),
      apply: (item, delta) => applyItemDelta(item as MutableItemProfile, delta, config.store),
    },
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
  readonly decode?: InteractionDecoder;
}

export function buildProcessor(engine: Engine, wiring: ProcessorWiring = {}): BatchProcessor {
  const config = engine.config;
  const baseline = createBaselineScorer();
  const decode = wiring.decode ?? ((record: LogRecord) => engine.codecs.interaction.decode(record.value));
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

export interface Pipeline {
  readonly engine: Engine;
  readonly log: EventLog;
  readonly processor: BatchProcessor;
  readonly runner: PipelineRunner;
  readonly metrics: PipelineMetrics;
  readonly topics: Readonly<Record<TopicRole, string>>;
  readonly framing: Framing;
  /** The serving scorer (STAR from the registry, or the baseline); close it after the runner stops. */
  readonly scorers: ScorerHandle;
}

export interface PipelineWiring {
  readonly logger: Logger;
  /** An existing log (the demo shares one with its producer); by default the adapter the config names. */
  readonly log?: EventLog;
  readonly registry?: Registry;
  readonly fromBeginning?: boolean;
  /** Also told everything the metrics are told (benchmarks and tests that need raw samples). */
  readonly observer?: Partial<PipelineInstruments>;
}

/** Everything `starstream run` needs, wired; call `runner.start()` to go. */
export async function buildPipeline(config: Config, wiring: PipelineWiring): Promise<Pipeline> {
  const store = buildStore(config, wiring.logger);
  await store.init();
  const engine = buildEngine(config, store);
  const metrics = createPipelineMetrics(wiring.registry ?? new Registry());
  const instruments = wiring.observer ? fanOut(metrics, wiring.observer) : metrics;
  const log = wiring.log ?? createEventLog(config, wiring.logger);
  const topics = topicNames(config);
  const framing = createFraming(config.eventLog);
  const scorers = await openScorerHandle(config, engine.templates, wiring.logger.child({ component: 'star' }), {
    onSwapped: (version, provider) => metrics.setModel(version, provider),
  });
  metrics.setModel(scorers.version, scorers.executionProvider ?? 'cpu');
  const processor = buildProcessor(engine, {
    instruments,
    scorer: () => scorers.current(),
    decode: (record) => framing.decode(engine.codecs.interaction, record.value, record.headers),
  });
  const runner = new PipelineRunner({
    log,
    processor,
    store,
    codecs: engine.codecs,
    framing,
    topics,
    instruments,
    logger: wiring.logger.child({ component: 'runner' }),
    groupId: config.pipeline.groupId,
    maxBatchRecords: config.pipeline.maxBatchRecords,
    fromBeginning: wiring.fromBeginning ?? true,
  });
  return { engine, log, processor, runner, metrics, topics, framing, scorers };
}

function fanOut(first: PipelineInstruments, second: Partial<PipelineInstruments>): PipelineInstruments {
  const out = {} as Record<keyof PipelineInstruments, (...args: never[]) => void>;
  for (const key of Object.keys(first) as (keyof PipelineInstruments)[]) {
    const a = first[key] as (...args: unknown[]) => void;
    const b = second[key] as ((...args: unknown[]) => void) | undefined;
    out[key] = b ? (...args: unknown[]) => (a(...args), b(...args)) : a;
  }
  return out as PipelineInstruments;
}
