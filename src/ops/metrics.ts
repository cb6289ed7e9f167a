import type { Registry } from 'prom-client';
import type { OnlineOutcome } from '../eval/online.ts';
import type { ExperimentInstruments } from '../experiments/runtime.ts';
import type { PipelineInstruments, Stage } from '../pipeline/instruments.ts';
import { createMetrics, type GroupMetrics } from './catalog.ts';
import type { StoreInstruments } from './instrumented-store.ts';

/**
 * Maps what the pipeline, the store wrapper, the STAR registry, the online evaluation and the API report
 * (plain hooks, no prom-client) onto the catalog's metrics (`catalog.ts`), on a registry injected by the
 * composition root — never prom-client's global one.
 */

/** Stages timed once per batch; the others once per event (their own histogram, finer buckets). */
const BATCH_STAGES: ReadonlySet<Stage> = new Set(['ingest', 'commit', 'publish']);

export interface PipelineMetrics extends PipelineInstruments, StoreInstruments, ExperimentInstruments {
  readonly registry: Registry;
  /** The raw catalog metrics, for components that count something no hook covers (e.g. the case sampler). */
  readonly catalog: GroupMetrics<'pipeline'>;
  /** A model started serving (also the first); `provider` is `none` for the baseline ranker. */
  modelServing(version: string, provider: string): void;
  modelRefused(code: string): void;
  inference(stats: { lists: number; rows: number; seconds: number; executionProvider: string }): void;
  onlineOutcome(outcome: OnlineOutcome): void;
  setStoreSize(users: number, items: number): void;
  setPaused(paused: boolean): void;
  apiRequest(route: string, method: string, status: number, seconds: number): void;
  setBuildInfo(info: { version: string; eventLog: string; store: string }): void;
}

export function createPipelineMetrics(registry: Registry, options: { processMetrics?: boolean } = {}): PipelineMetrics {
  const m = createMetrics(registry, 'pipeline', options);
  m.consumptionPaused.set(0);
  return {
    registry,
    catalog: m,
    stageDuration: (stage, seconds) => (BATCH_STAGES.has(stage) ? m.batchStageDuration : m.stageDuration).observe({ stage }, seconds),
    stageFailed: (stage, code) => m.stageErrors.inc({ stage, code }),
    batchProcessed: (n, seconds) => {
      m.batchDuration.observe(seconds);
      m.batchRecords.observe(n);
      m.recordsConsumed.inc(n);
    },
    interactionsAccepted: (n) => m.interactionsAccepted.inc(n),
    deadLettered: (code) => m.deadLetters.inc({ code }),
    recommendationPublished: (seconds) => {
      m.recommendations.inc();
      m.pipelineLatency.observe(seconds);
    },
    rateLimited: () => m.rateLimited.inc(),
    learningSkipped: () => m.learningSkipped.inc(),
    itemDeltasResent: () => m.itemDeltasResent.inc(),
    endToEndLatency: (seconds) => m.endToEndLatency.observe(seconds),
    eventLatency: (seconds) => m.eventLatency.observe(seconds),
    consumerLag: (topic, partition, n) => m.consumerLag.set({ topic, partition: String(partition) }, n),
    inFlight: (n) => m.inFlight.set(n),
    caseSampled: (reason) => m.casesSampled.inc({ reason }),
    storeRoundTrips: (count) => m.storeRoundTripsPerBatch.observe(count),
    batchRetried: (consumer) => m.batchRetries.inc({ consumer }),
    batchFailures: (consumer, failures) => m.batchFailedAttempts.set({ consumer }, failures),
    operation: (operation, seconds) => m.storeOperationDuration.observe({ operation }, seconds),
    operationFailed: (operation, code) => m.storeOperationErrors.inc({ operation, code }),
    modelServing: (version, provider) => {
      m.modelInfo.reset();
      m.modelInfo.set({ version, provider }, 1);
      m.modelLoads.inc();
      m.modelLoadedTime.set(Date.now() / 1000);
    },
    modelRefused: (code) => m.modelRefusals.inc({ code }),
    inference: (s) => {
      m.starBatchLists.observe(s.lists);
      m.starBatchRows.observe(s.rows);
      m.starInferenceDuration.observe({ provider: s.executionProvider }, s.seconds);
    },
    onlineOutcome: (o) => {
      // inc by 0 on a miss still creates the series, so a hit-rate ratio exists before the first hit.
      m.onlineCases.inc({ model_version: o.modelVersion });
      m.onlineHits.inc({ model_version: o.modelVersion, ranker: 'served' }, o.servedHit ? 1 : 0);
      m.onlineHits.inc({ model_version: o.modelVersion, ranker: 'popularity' }, o.popularHit ? 1 : 0);
    },
    setStoreSize: (users, items) => {
      m.storeUsers.set(users);
      m.storeItems.set(items);
    },
    setPaused: (paused) => m.consumptionPaused.set(paused ? 1 : 0),
    apiRequest: (route, method, status, seconds) => {
      m.apiRequests.inc({ route, method, status: String(status) });
      m.apiDuration.observe({ route }, seconds);
    },
    experimentOutcome: (experiment, arm, hit, ndcg) => {
      // inc by 0 on a miss still creates the series, so a hit-rate ratio exists before the first hit.
      m.experimentOutcomes.inc({ experiment, arm });
      m.experimentHits.inc({ experiment, arm }, hit ? 1 : 0);
      m.experimentNdcg.inc({ experiment, arm }, ndcg);
    },
    experimentRequest: (experiment, arm, seconds, ok) => {
      m.experimentScoringDuration.observe({ experiment, arm }, seconds);
      m.experimentScoringErrors.inc({ experiment, arm }, ok ? 0 : 1);
    },
    experimentLook: (report) => {
      const experiment = report.experiment;
      for (const [arm, serving] of Object.entries(report.serving)) m.experimentArmServing.set({ experiment, arm }, serving ? 1 : 0);
      for (const c of report.challengers) {
        // A bound not yet finite (no outcomes) is left unset rather than exported as NaN.
        const bounds = { estimate: c.test.difference, lower: c.test.lower, upper: c.test.upper };
        for (const [bound, value] of Object.entries(bounds)) if (value !== null) m.experimentDifference.set({ experiment, arm: c.arm, bound }, value);
      }
      for (const a of report.applied) m.experimentDecisions.inc({ experiment, arm: a.arm, verdict: a.verdict, code: a.code ?? 'NONE' });
    },
    setBuildInfo: (info) => {
      m.buildInfo.reset();
      m.buildInfo.set({ version: info.version, event_log: info.eventLog, store: info.store }, 1);
    },
  };
}
