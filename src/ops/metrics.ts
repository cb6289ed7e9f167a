import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import type { PipelineInstruments, Stage } from '../pipeline/instruments.ts';

/**
 * The metric catalog: every starstream metric is defined here, on a registry injected by the composition
 * root (never prom-client's global one). Names carry units; labels have bounded cardinality (stage, code,
 * topic/partition) and never user or item ids.
 */

/** Stage latencies range from microseconds (ingest of one record) to seconds (a slow remote store). */
const STAGE_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface PipelineMetrics extends PipelineInstruments {
  readonly registry: Registry;
  setModel(version: string, provider: string): void;
  setStoreSize(users: number, items: number): void;
}

export function createPipelineMetrics(registry: Registry, options: { processMetrics?: boolean } = {}): PipelineMetrics {
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'starstream_' });
  const r = [registry];
  const stageSeconds = new Histogram({ name: 'starstream_stage_duration_seconds', help: 'Time spent in one pipeline stage per event (ingest, commit, publish: per batch)', labelNames: ['stage'], buckets: STAGE_BUCKETS, registers: r });
  const batchSeconds = new Histogram({ name: 'starstream_batch_duration_seconds', help: 'Time to process one consumed batch, outputs acknowledged', buckets: LATENCY_BUCKETS, registers: r });
  const batchRecords = new Histogram({ name: 'starstream_batch_records', help: 'Records per consumed batch', buckets: [1, 5, 10, 50, 100, 250, 500, 1000, 5000], registers: r });
  const records = new Counter({ name: 'starstream_records_consumed_total', help: 'Interaction records consumed', registers: r });
  const accepted = new Counter({ name: 'starstream_interactions_accepted_total', help: 'Interactions that passed ingest', registers: r });
  const deadLetters = new Counter({ name: 'starstream_dead_letters_total', help: 'Records sent to the DLQ, by reason code', labelNames: ['code'], registers: r });
  const recommendations = new Counter({ name: 'starstream_recommendations_total', help: 'Recommendations built', registers: r });
  const rateLimited = new Counter({ name: 'starstream_rate_limited_total', help: 'Events not ranked because the user was rate limited', registers: r });
  const pipelineLatency = new Histogram({ name: 'starstream_pipeline_latency_seconds', help: 'Batch arrival to recommendation built', buckets: LATENCY_BUCKETS, registers: r });
  const endToEnd = new Histogram({ name: 'starstream_end_to_end_latency_seconds', help: 'Record appended to the log to its outputs acknowledged', buckets: LATENCY_BUCKETS, registers: r });
  const lag = new Gauge({ name: 'starstream_consumer_lag_records', help: 'Records not yet committed, per partition', labelNames: ['topic', 'partition'], registers: r });
  const inFlight = new Gauge({ name: 'starstream_in_flight_records', help: 'Records being processed now', registers: r });
  const model = new Gauge({ name: 'starstream_model_info', help: 'The serving model (value 1)', labelNames: ['version', 'provider'], registers: r });
  const storeUsers = new Gauge({ name: 'starstream_store_users', help: 'Users in the vector store', registers: r });
  const storeItems = new Gauge({ name: 'starstream_store_items', help: 'Items in the vector store', registers: r });

  return {
    registry,
    stageDuration: (stage: Stage, seconds: number) => stageSeconds.observe({ stage }, seconds),
    batchProcessed: (n, seconds) => {
      batchSeconds.observe(seconds);
      batchRecords.observe(n);
      records.inc(n);
    },
    interactionsAccepted: (n) => accepted.inc(n),
    deadLettered: (code) => deadLetters.inc({ code }),
    recommendationPublished: (seconds) => {
      recommendations.inc();
      pipelineLatency.observe(seconds);
    },
    rateLimited: () => rateLimited.inc(),
    endToEndLatency: (seconds) => endToEnd.observe(seconds),
    consumerLag: (topic, partition, n) => lag.set({ topic, partition: String(partition) }, n),
    inFlight: (n) => inFlight.set(n),
    setModel: (version, provider) => {
      model.reset();
      model.set({ version, provider }, 1);
    },
    setStoreSize: (users, items) => {
      storeUsers.set(users);
      storeItems.set(items);
    },
  };
}
