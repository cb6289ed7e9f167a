/**
 * What the pipeline reports about itself. The pipeline calls these hooks; `ops/metrics.ts` maps them to
 * Prometheus metrics, tests may record them. Keeping the two apart means no stage imports prom-client.
 */

export const STAGES = ['ingest', 'learn', 'candidates', 'evidence', 'ranking', 'publish', 'commit'] as const;
export type Stage = (typeof STAGES)[number];

export interface PipelineInstruments {
  stageDuration(stage: Stage, seconds: number): void;
  batchProcessed(records: number, seconds: number): void;
  interactionsAccepted(count: number): void;
  deadLettered(code: string): void;
  recommendationPublished(pipelineLatencySeconds: number): void;
  rateLimited(): void;
  /** Append time on the log → output acknowledged. */
  endToEndLatency(seconds: number): void;
  consumerLag(topic: string, partition: number, lag: number): void;
  inFlight(records: number): void;
}

export const NO_INSTRUMENTS: PipelineInstruments = {
  stageDuration: () => {},
  batchProcessed: () => {},
  interactionsAccepted: () => {},
  deadLettered: () => {},
  recommendationPublished: () => {},
  rateLimited: () => {},
  endToEndLatency: () => {},
  consumerLag: () => {},
  inFlight: () => {},
};
