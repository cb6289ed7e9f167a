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
import { OnlineHitRate } from './eval/online.ts';
import { instrumentStore } from './ops/instrumented-store.ts';
import { createPipelineMetrics, type PipelineMetrics } from './ops/metrics.ts';
import { packageVersion } from './ops/version.ts';
import { PipelineRunner } from './pipeline/runner.ts';
import { toDeadLetter, type InteractionDecoder } from './stages/ingest/index.ts';
import { createCodecs, type Codecs } from './eventlog/codec/avro.ts';
import type { LogRecord } from './eventlog/port.ts';
import type { Logger } from './logging/logger.ts';
import { createRng } from './data/random.ts';
import { NO_INSTRUMENTS, type PipelineInstruments } from './pipeline/instruments.ts';
import { BatchProcessor } from './pipeline/processor.ts';
import type { CaseOptions } from './pipeline/recommend.ts';
import { CollaborativeLearner, NegativeSampler } from './stages/embeddings/index.ts';
import { loadCstTemplates, type CstTemplates } from './cst/index.ts';
import { UserRateLimiter } from './stages/publish/index.ts';
import { CaseSampler, type SamplingOptions } from './stages/sampling/index.ts';
import type { ItemMerger } from './stages/state/store-view.ts';
import { createBaselineScorer } from './star/baseline/scorer.ts';
import type { Scorer } from './star/port.ts';
import { OnlineBlendScorer } from './star/online/scorer.ts';
import { openScorerHandle } from './star/registry/open.ts';
import { StarRegistry, type RefreshResult, type ScorerHandle } from './star/registry/registry.ts';
import { createEmbeddedStore, EmbeddedStore } from './store/embedded/index.ts';
import { EmbeddedCheckpointer } from './store/embedded/checkpoint.ts';
import { createTieredStore } from './store/tiered/index.ts';
import { applyItemDelta, cloneItem, validateItemDelta, type MutableItemProfile } from './store/item-merge.ts';
import { decayedCount } from './store/popularity.ts';
import { DEFAULT_DEDUPE_WINDOW, ItemDeltaWriter } from './stages/item-deltas/index.ts';
import type { VectorStore } from './store/port.ts';
import { createQdrantStore } from './store/qdrant/index.ts';
import type { OnRequest } from './store/qdrant/adapter.ts';
import { createTeacherMetrics, type TeacherMetrics } from './ops/teacher-metrics.ts';
import { deadLetterRecord } from './pipeline/outputs.ts';
import { createLanguageModel } from './teacher/llm/create.ts';
import type { LanguageModel } from './teacher/llm/port.ts';
import { runTeacher } from './teacher/run.ts';
import { TeacherWorker } from './teacher/worker.ts';
import { Labeller } from './teacher/labeller.ts';
import { compileExperiment } from './experiments/definition.ts';
import { ExperimentRuntime } from './experiments/runtime.ts';
import { openArmScorers } from './experiments/scorers.ts';

const NEGATIVE_POOL = 20_000;

export function buildStore(config: Config, logger?: Logger, onRequest?: OnRequest): VectorStore {
  const s = config.store;
  if (s.kind === 'qdrant') return buildTieredStore(config, logger, onRequest);
  return createEmbeddedStore({ ...s, ...s.embedded, path: s.embedded.path, ...(logger ? { log: logger.child({ component: 'embedded-store' }) } : {}) });
}

/**
 * `store.kind = qdrant`: a hot in-process tier (an embedded store, memory only) written through to Qdrant, so
 * the hot path makes no per-event round trip (`store/tiered/tiered-store.ts`).
 */
function buildTieredStore(config: Config, logger?: Logger, onRequest?: OnRequest): VectorStore {
  const s = config.store;
  const durable = createQdrantStore({ config: s, ...(logger ? { log: logger.child({ component: 'qdrant' }) } : {}), ...(onRequest ? { onRequest } : {}) });
  const hot = new EmbeddedStore({ ...s, ...s.embedded, path: undefined, ...(logger ? { log: logger.child({ component: 'hot-tier' }) } : {}) });
  return createTieredStore({
    durable,
    hot,
    limits: s,
    cacheTtlMs: s.qdrant.cacheTtlMs,
    pageSize: s.qdrant.maxBatchPoints,
    ...(logger ? { log: logger } : {}),
  });
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
  /** The same draws over item slots (one of the two serves, by store: `VectorStore.openBatch`). */
  readonly negativeSlots: NegativeSampler<number>;
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
      popularity: (item, nowMs) => decayedCount(item.popularity.longLog, nowMs, config.store.popularityLongHalfLifeMs),
    },
    learner,
    negatives: new NegativeSampler(NEGATIVE_POOL, rng.fork('negatives')),
    negativeSlots: new NegativeSampler<number>(NEGATIVE_POOL, rng.fork('negatives')),
    templates: loadCstTemplates(),
    codecs: createCodecs(),
    caseOptions: caseOptions(config),
  };
}

export interface ProcessorWiring {
  readonly instruments?: PipelineInstruments;
  /** The scorer that serves `userId` now (an experiment routes by user); taken once per case. */
  readonly scorer?: (userId: string) => Scorer;
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
      negativeSlots: engine.negativeSlots,
      scorer: wiring.scorer ?? (() => baseline),
      templates: engine.templates,
      rateLimiter: new UserRateLimiter(config.publish.minIntervalPerUserMs),
      instruments: wiring.instruments ?? NO_INSTRUMENTS,
      sampler: config.sampling.enabled ? new CaseSampler(samplingOptions(config)) : null,
    },
    {
      rankingEnabled: config.pipeline.rankingEnabled,
      topK: config.ranking.topK,
      negatives: config.embeddings.negatives,
      maxEventAgeMs: config.pipeline.maxEventAgeMs,
      maxFutureSkewMs: config.pipeline.maxFutureSkewMs,
      routeItemDeltas: config.store.itemWrites === 'routed',
      ...engine.caseOptions,
    },
  );
}

/** `sampling.*` as the case sampler's options (strategy weights keyed by `SamplingReason`). */
export function samplingOptions(config: Config): SamplingOptions {
  const s = config.sampling;
  return {
    enabled: s.enabled,
    casesPerMinute: s.casesPerMinute,
    burstCases: s.burstCases,
    candidatesPerCase: s.candidatesPerCase,
    seed: s.seed,
    weights: { uniform: s.weights.uniform, uncertain: s.weights.uncertain, 'cold-user': s.weights.coldUser, 'long-tail': s.weights.longTail },
    uncertainMaxMargin: s.uncertainMaxMargin,
    coldUserMaxInteractions: s.coldUserMaxInteractions,
    longTailMaxPopularityShare: s.longTailMaxPopularityShare,
    longTailMinShare: s.longTailMinShare,
    rateWindowMs: s.rateWindowMs,
  };
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
  /** Online hit rate of what the stream serves (also counted in the metrics, per model version). */
  readonly online: OnlineHitRate;
  /** Reads the STAR registry's `CURRENT` now (the admin API); null when the baseline ranker serves. */
  readonly reloadModel: (() => Promise<RefreshResult>) | null;
  /** The online experiment (`config.experiment`): arms, outcome join, looks; null without one. Closed with `scorers`. */
  readonly experiment: ExperimentRuntime | null;
}

export interface PipelineWiring {
  readonly logger: Logger;
  /** An existing log (the demo shares one with its producer); by default the adapter the config names. */
  readonly log?: EventLog;
  readonly registry?: Registry;
  readonly fromBeginning?: boolean;
  /** Also told everything the metrics are told (benchmarks and tests that need raw samples). */
  readonly observer?: Partial<PipelineInstruments>;
  /** A store shared with other pipelines (tests of several instances); by default the one the config names. */
  readonly store?: VectorStore;
}

/**
 * The single writer of routed item deltas (`store.itemWrites = routed`), or null when every instance applies
 * its own (`direct`). Direct writes on Qdrant are safe with one instance only (its adapter serializes writes
 * per item in-process, not across processes), and the instance count is unknown here, so that is a warning,
 * not a startup failure.
 */
export function buildItemDeltaWriter(config: Config, store: VectorStore, logger: Logger): ItemDeltaWriter | null {
  if (config.store.itemWrites === 'direct') {
    if (config.store.kind === 'qdrant') {
      logger.warn(
        { store: 'qdrant', itemWrites: 'direct' },
        'store.itemWrites=direct on Qdrant: safe with ONE pipeline instance only; with more, concurrent item updates are lost (set store.itemWrites=routed)',
      );
    }
    return null;
  }
  return new ItemDeltaWriter(store, {
    dedupeWindow: DEFAULT_DEDUPE_WINDOW,
    validate: (delta) => validateItemDelta(delta, config.store.dimension),
  });
}

/** Everything `starstream run` needs, wired; call `runner.start()` to go. */
export async function buildPipeline(config: Config, wiring: PipelineWiring): Promise<Pipeline> {
  const metrics = createPipelineMetrics(wiring.registry ?? new Registry());
  metrics.setBuildInfo({ version: packageVersion(), eventLog: config.eventLog.kind, store: config.store.kind });
  const raw = wiring.store ?? buildStore(config, wiring.logger);
  const store = instrumentStore(raw, metrics);
  await store.init();
  const engine = buildEngine(config, store);
  const instruments = wiring.observer ? fanOut(metrics, wiring.observer) : metrics;
  const log = wiring.log ?? createEventLog(config, wiring.logger);
  const checkpointer = buildCheckpointer(config, raw, engine, log, wiring.logger);
  const topics = topicNames(config);
  const framing = createFraming(config.eventLog);
  const scorers = await openScorerHandle(config, engine.templates, wiring.logger.child({ component: 'star' }), {
    onSwapped: (version, provider) => metrics.modelServing(version, provider),
    onRefused: (code) => metrics.modelRefused(code),
    onInference: (stats) => metrics.inference(stats),
  });
  // A registry reported its first model through onSwapped; the baseline ranker has none to report.
  if (!(scorers instanceof StarRegistry)) metrics.modelServing(scorers.version, scorers.executionProvider ?? 'cpu');
  const experiment = config.experiment ? await buildExperiment(config, scorers, engine, metrics, wiring.logger) : null;
  if (checkpointer) attachOnlineBlends(checkpointer, scorers, experiment?.sources ?? new Map());
  const processor = buildProcessor(engine, {
    instruments,
    scorer: experiment ? (userId) => experiment.runtime.router.scorerFor(userId) : () => scorers.current(),
    decode: (record) => framing.decode(engine.codecs.interaction, record.value, record.headers),
  });
  const online = new OnlineHitRate(config.ranking.topK);
  online.onOutcome = (outcome) => metrics.onlineOutcome(outcome);
  // Listeners added later (the demo's progress, the case sampler) must call the one they replace.
  processor.onRanked = (ranked) => online.observe(ranked);
  if (experiment) {
    const { runtime } = experiment;
    // The counts move with the offsets where the state does: restored from the checkpoint the stream resumes at.
    checkpointer?.attach('experiment', runtime.checkpointAttachment());
    processor.onInteraction = (event) => runtime.observe(event);
    processor.onRanked = (ranked) => {
      online.observe(ranked);
      runtime.served(ranked.event, ranked.ranked.map((r) => r.evidence.itemId), ranked.cell ?? null);
    };
    runtime.start();
  }
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
    itemDeltaWriter: buildItemDeltaWriter(config, store, wiring.logger),
    deadLetterMaxBytes: config.eventLog.topics.deadLetterMaxBytes,
    stuckBatchMs: config.pipeline.stuckBatchMs,
    checkpointer,
  });
  const reloadModel = scorers instanceof StarRegistry ? () => scorers.refresh() : null;
  return {
    engine,
    log,
    processor,
    runner,
    metrics,
    topics,
    framing,
    scorers: experiment ? experiment.handle : scorers,
    online,
    reloadModel,
    experiment: experiment?.runtime ?? null,
  };
}

/**
 * The online experiment of `config.experiment`: its arms' scorers (`experiments/scorers.ts`) and its runtime.
 * The returned handle stands for `base` and also ends the experiment when closed (a last look, its state
 * written), then closes the arms' scorers and `base`: close it after the runner has stopped, as before.
 */
/**
 * Online blends learn from the stream, so their weights move with the offsets where the state does: each is
 * attached to the checkpoint (`online-blend` for `ranking.scorer=online`, `online-blend:<arm>` for an
 * experiment's arm) and restored from the one the stream resumes at.
 */
function attachOnlineBlends(checkpointer: EmbeddedCheckpointer, base: ScorerHandle, arms: ReadonlyMap<string, () => Scorer>): void {
  const blends: [string, Scorer][] = [['online-blend', base.current()], ...[...arms].map(([arm, scorer]): [string, Scorer] => [`online-blend:${arm}`, scorer()])];
  for (const [name, scorer] of blends) if (scorer instanceof OnlineBlendScorer) checkpointer.attach(name, scorer.checkpointAttachment());
}

async function buildExperiment(
  config: Config,
  base: ScorerHandle,
  engine: Engine,
  metrics: PipelineMetrics,
  logger: Logger,
): Promise<{ runtime: ExperimentRuntime; handle: ScorerHandle; sources: ReadonlyMap<string, () => Scorer> }> {
  const experiment = compileExperiment(config.experiment);
  const arms = await openArmScorers(config, experiment, base, engine.templates, logger);
  const runtime = new ExperimentRuntime({ experiment, sources: arms.sources, logger, instruments: metrics, promote: (arm) => arms.promote(arm) });
  const handle: ScorerHandle = {
    current: () => base.current(),
    get version() {
      return base.version;
    },
    get executionProvider() {
      return base.executionProvider;
    },
    close: async () => {
      try {
        await runtime.close();
      } finally {
        try {
          await arms.close();
        } finally {
          await base.close();
        }
      }
    },
  };
  return { runtime, handle, sources: arms.sources };
}

/**
 * Checkpoints for the embedded store with a snapshot path (`store/embedded/checkpoint.ts`): the state with the
 * offsets it reflects, periodically and at shutdown; consumers resume from it. Without a path on Kafka, a
 * restart forgets all learning while the group's offsets say it was done: warned once, at startup.
 */
export function buildCheckpointer(config: Config, store: VectorStore, engine: Engine, log: EventLog, logger: Logger): EmbeddedCheckpointer | null {
  const embedded = config.store.embedded;
  if (config.store.kind !== 'embedded' || !(store instanceof EmbeddedStore)) return null;
  if (!embedded.path) {
    if (log.kind === 'kafka') {
      logger.warn(
        { code: 'STATE_NOT_DURABLE', store: 'embedded', eventLog: 'kafka' },
        'the embedded store has no snapshot path (store.embedded.path): a restart forgets everything learned, while the consumer group resumes after it',
      );
    }
    return null;
  }
  return new EmbeddedCheckpointer({
    store,
    negatives: engine.negativeSlots,
    log,
    intervalMs: embedded.checkpointIntervalMs,
    everyBatches: embedded.checkpointEveryBatches,
    logger: logger.child({ component: 'checkpoint' }),
  });
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

export interface TeacherWiring {
  readonly logger: Logger;
  /** An existing log (a process that also runs the pipeline on the embedded log); else the configured one. */
  readonly log?: EventLog;
  /** An existing store (the embedded store lives in the pipeline's process); else the configured one, opened here. */
  readonly store?: VectorStore;
  /** A language model already open (tests, benchmarks); else `teacher.llm`. Closed by `close()` either way. */
  readonly model?: LanguageModel;
  readonly registry?: Registry;
  /** False when `registry` already holds the process metrics (the pipeline's registry in one process). */
  readonly processMetrics?: boolean;
  readonly fromBeginning?: boolean;
}

export interface TeacherProcess {
  readonly worker: TeacherWorker;
  readonly model: LanguageModel;
  readonly metrics: TeacherMetrics;
  readonly topics: Readonly<Record<TopicRole, string>>;
  /** After `worker.stop()`: closes the model, and the store and log this builder opened. */
  close(): Promise<void>;
}

/** Everything `starstream teacher` needs, wired: teacher-cases → MARS (`teacher.*`) → trajectories. */
export async function buildTeacherWorker(config: Config, wiring: TeacherWiring): Promise<TeacherProcess> {
  const logger = wiring.logger.child({ component: 'teacher' });
  const store = wiring.store ?? buildStore(config, wiring.logger);
  if (!wiring.store) await store.init();
  const engine = buildEngine(config, store);
  const log = wiring.log ?? createEventLog(config, wiring.logger);
  const topics = topicNames(config);
  const framing = createFraming(config.eventLog);
  const metrics = createTeacherMetrics(wiring.registry ?? new Registry(), { processMetrics: wiring.processMetrics ?? true });
  const model = wiring.model ?? (await createLanguageModel(config.teacher.llm, wiring.logger));
  const t = config.teacher;
  if (t.llm.backend === 'llama' && t.concurrency > t.llm.sequences) {
    logger.warn({ concurrency: t.concurrency, sequences: t.llm.sequences }, 'teacher.concurrency exceeds teacher.llm.sequences: cases will queue for the model and may hit their wall-time limit');
  }
  const worker = new TeacherWorker(
    {
      log,
      decodeCase: (record) => framing.decode(engine.codecs.teacherCase, record.value, record.headers),
      deadLetter: (record, err) =>
        deadLetterRecord(toDeadLetter(record, err, Date.now()), topics.deadLetters, engine.codecs, framing, config.eventLog.topics.deadLetterMaxBytes),
      teach: (teacherCase) =>
        runTeacher(teacherCase, {
          model,
          store,
          limits: t.limits,
          templates: engine.templates,
          evidence: engine.caseOptions.evidence,
          instruments: metrics,
        }),
      instruments: metrics,
      logger,
    },
    {
      groupId: t.groupId,
      topics: { teacherCases: topics.teacherCases, trajectories: topics.trajectories },
      maxBatchRecords: t.maxBatchRecords,
      fromBeginning: wiring.fromBeginning ?? true,
      concurrency: t.concurrency,
      maxCaseAttempts: t.maxCaseAttempts,
    },
  );
  return {
    worker,
    model,
    metrics,
    topics,
    close: async () => {
      try {
        await model.close();
      } finally {
        try {
          if (!wiring.log) await log.close();
        } finally {
          if (!wiring.store) await store.close();
        }
      }
    },
  };
}

export interface LabellerWiring {
  readonly logger: Logger;
  /** An existing log (the embedded default runs everything in one process); else the configured one. */
  readonly log?: EventLog;
  readonly registry?: Registry;
  /** The teacher metrics of this process, when it also runs the teacher; else created on `registry`. */
  readonly metrics?: TeacherMetrics;
}

export interface LabellerProcess {
  readonly labeller: Labeller;
  close(): Promise<void>;
}

/**
 * The labelling half of the side stream (outcome join → pairing with trajectories → dataset export). One
 * per `sampling.outcomes.dataDir`: its journals are local files. Exported records are counted by result on
 * `starstream_teacher_cases_completed_total`.
 */
export async function buildLabeller(config: Config, wiring: LabellerWiring): Promise<LabellerProcess> {
  const logger = wiring.logger.child({ component: 'labeller' });
  const log = wiring.log ?? createEventLog(config, wiring.logger);
  const metrics = wiring.metrics ?? createTeacherMetrics(wiring.registry ?? new Registry());
  const labeller = await Labeller.open(config.sampling, {
    log,
    codecs: createCodecs(),
    framing: createFraming(config.eventLog),
    topics: topicNames(config),
    groupId: config.teacher.groupId,
    maxBatchRecords: config.teacher.maxBatchRecords,
    logger,
    onLabelled: (result) => metrics.catalog.teacherCasesCompleted.inc({ result }),
    onSkipped: (code) => metrics.deadLettered(code),
  });
  return {
    labeller,
    close: async () => {
      try {
        await labeller.stop();
      } finally {
        if (!wiring.log) await log.close();
      }
    },
  };
}
