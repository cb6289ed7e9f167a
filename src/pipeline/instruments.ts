/**
 * What the pipeline reports about itself. The pipeline calls these hooks; `ops/metrics.ts` maps them to
 * Prometheus metrics, tests may record them. Keeping the two apart means no stage imports prom-client.
 */

export const STAGES = ['ingest', 'learn', 'candidates', 'evidence', 'ranking', 'publish', 'commit'] as const;
export type Stage = (typeof STAGES)[number];

export interface PipelineInstruments {
  stageDuration(stage: Stage, seconds: number): void;
  /** A stage threw; `code` is the error's stable code (`errorCode`). */
  stageFailed(stage: Stage, code: string): void;
  batchProcessed(records: number, seconds: number): void;
  interactionsAccepted(count: number): void;
  deadLettered(code: string): void;
  recommendationPublished(pipelineLatencySeconds: number): void;
  rateLimited(): void;
  /**
   * An event was not learned again: its user's state already held it (a batch redelivered after its store
   * write; Qdrant, both `store.itemWrites` modes). It is still ranked and answered.
   */
  learningSkipped(): void;
  /** A held event's routed item deltas were sent again from its user's outbox (`stages/item-deltas/outbox.ts`). */
  itemDeltasResent(): void;
  /** Append time on the log → output acknowledged. */
  endToEndLatency(seconds: number): void;
  /** Event time of a ranked interaction → its recommendation acknowledged by the log. */
  eventLatency(seconds: number): void;
  consumerLag(topic: string, partition: number, lag: number): void;
  inFlight(records: number): void;
  /** The sampler picked an event as a teacher case, for this reason (`SamplingReason`). */
  caseSampled(reason: string): void;
  /** Requests the store sent to a remote server while one batch was processed (`VectorStore.roundTrips`). */
  storeRoundTrips(count: number): void;
  /** A batch of `consumer` (interactions, items, item-deltas) failed and will be redelivered. */
  batchRetried(consumer: string): void;
  /** The most attempts in a row that failed, over `consumer`'s batches still being retried (0: none). */
  batchFailures(consumer: string, failures: number): void;
}

export const NO_INSTRUMENTS: PipelineInstruments = {
  stageDuration: () => {},
  stageFailed: () => {},
  batchProcessed: () => {},
  interactionsAccepted: () => {},
  deadLettered: () => {},
  recommendationPublished: () => {},
  rateLimited: () => {},
  learningSkipped: () => {},
  itemDeltasResent: () => {},
  endToEndLatency: () => {},
  eventLatency: () => {},
  consumerLag: () => {},
  inFlight: () => {},
  caseSampled: () => {},
  storeRoundTrips: () => {},
  batchRetried: () => {},
  batchFailures: () => {},
};
