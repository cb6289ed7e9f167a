import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { collectProcessMetrics } from './process-metrics.ts';

/**
 * The metric catalog: the one declarative list of every starstream metric (name, type, labels, help, buckets,
 * and the process that exports it). Metrics are created from it (`createMetrics`), `docs/metrics.md` is generated
 * from it (`starstream metrics docs`), and `test/ops/catalog.test.ts` fails when a process's registry, this list
 * and the doc disagree. Dashboards and alert rules are checked against it too (`test/ops/dashboards.test.ts`).
 *
 * Rules every entry follows:
 * - names start with `starstream_` and carry their unit (`_seconds`, `_bytes`, `_records`; counters `_total`);
 * - labels have bounded cardinality: stage, operation, error code, topic/partition, model version (a handful
 *   per process lifetime) — never user ids, item ids, event ids or free text;
 * - histograms get buckets that fit what they measure (microseconds for a per-event stage, seconds for a
 *   remote call, minutes for a teacher case).
 *
 * Adding a metric (e.g. for the teacher worker):
 * 1. add an entry below, in the group of the process that exports it (`pipeline` = `starstream run`, which also
 *    serves the API; `teacher` = the teacher worker);
 * 2. in that process, `const m = createMetrics(registry, 'teacher')` on the registry the composition root
 *    injects, and use `m.teacherCasesCompleted.inc({ result: 'kept' })` — the object is typed from this list,
 *    so a label name that is not declared does not compile;
 * 3. run `node bin/starstream.js metrics docs > docs/metrics.md`; use the metric in `dashboards/` or
 *    `deploy/prometheus/alerts.yml` only by a name declared here (the tests check it).
 */

export const METRIC_TYPES = ['counter', 'gauge', 'histogram'] as const;
export type MetricType = (typeof METRIC_TYPES)[number];

/** The process that exports a metric: each has its own registry and its own `/metrics`. */
export const METRIC_GROUPS = ['pipeline', 'teacher'] as const;
export type MetricGroup = (typeof METRIC_GROUPS)[number];

export interface MetricSpec {
  readonly name: string;
  readonly type: MetricType;
  readonly group: MetricGroup;
  readonly labels: readonly string[];
  readonly help: string;
  /** Histograms only; upper bounds, ascending (+Inf is implied). */
  readonly buckets?: readonly number[];
}

/** Every metric name starts with this, the default process metrics too. */
export const METRIC_PREFIX = 'starstream_';

/** One per-event stage runs in microseconds to a few milliseconds (a remote search: tens of ms). */
const EVENT_STAGE_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Per-batch stages (decode a batch, write it back, produce its outputs) take milliseconds to seconds. */
const BATCH_STAGE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Latencies an SLO is written on: milliseconds to tens of seconds. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Event time to acknowledgement includes the producer's own delay and any backlog: up to an hour. */
const EVENT_AGE_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** A store call: an in-process index answers in microseconds, Qdrant over the network in milliseconds. */
const STORE_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];
/** Store requests per batch: a handful by design (reads of misses, one write per collection), not per event. */
const ROUND_TRIP_BUCKETS = [0, 1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128];
/** One STAR forward pass: a few ms on a GPU, tens to hundreds on a CPU for a full micro-batch. */
const INFERENCE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** A teacher case runs several LLM agents: seconds to minutes. */
const TEACHER_CASE_BUCKETS = [1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200];
const LLM_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];

export const METRICS = {
  // ── consumption and throughput ────────────────────────────────────────────────────────────────────────
  recordsConsumed: {
    name: 'starstream_records_consumed_total', type: 'counter', group: 'pipeline', labels: [],
    help: 'Interaction records consumed whose batch outputs were acknowledged',
  },
  interactionsAccepted: {
    name: 'starstream_interactions_accepted_total', type: 'counter', group: 'pipeline', labels: [],
    help: 'Interactions that passed ingest (decoded and valid)',
  },
  recommendations: {
    name: 'starstream_recommendations_total', type: 'counter', group: 'pipeline', labels: [],
    help: 'Recommendations built by the stream (one per ranked event)',
  },
  rateLimited: {
    name: 'starstream_rate_limited_total', type: 'counter', group: 'pipeline', labels: [],
    help: 'Events learned but not ranked because their user was rate limited (publish.minIntervalPerUserMs)',
  },
  learningSkipped: {
    name: 'starstream_learning_skipped_total', type: 'counter', group: 'pipeline', labels: [],
    help: 'Events not learned again because their user\'s stored state already held them (a batch redelivered after its store write); still ranked and answered',
  },
  itemDeltasResent: {
    name: 'starstream_item_deltas_resent_total', type: 'counter', group: 'pipeline', labels: [],
    help: 'Held events whose item deltas were sent again from their user\'s outbox (store.itemWrites=routed on Qdrant: a process that crashed between the users\' write and the send)',
  },
  deadLetters: {
    name: 'starstream_dead_letters_total', type: 'counter', group: 'pipeline', labels: ['code'],
    help: 'Records sent to the DLQ, by reason code (UNDECODABLE, TIMESTAMP_OUT_OF_RANGE, UNKNOWN_EVENT_TYPE, …)',
  },
  batchRecords: {
    name: 'starstream_batch_records', type: 'histogram', group: 'pipeline', labels: [],
    buckets: [1, 5, 10, 50, 100, 250, 500, 1000, 5000],
    help: 'Records per consumed interactions batch',
  },
  batchDuration: {
    name: 'starstream_batch_duration_seconds', type: 'histogram', group: 'pipeline', labels: [], buckets: LATENCY_BUCKETS,
    help: 'Time to process one consumed batch, outputs acknowledged',
  },
  // ── stages ────────────────────────────────────────────────────────────────────────────────────────────
  stageDuration: {
    name: 'starstream_stage_duration_seconds', type: 'histogram', group: 'pipeline', labels: ['stage'], buckets: EVENT_STAGE_BUCKETS,
    help: 'Time in one per-event stage (learn, candidates, evidence, ranking) for one event; _count is the stage throughput',
  },
  batchStageDuration: {
    name: 'starstream_batch_stage_duration_seconds', type: 'histogram', group: 'pipeline', labels: ['stage'], buckets: BATCH_STAGE_BUCKETS,
    help: 'Time in one per-batch stage (ingest, commit, publish) for one batch',
  },
  stageErrors: {
    name: 'starstream_stage_errors_total', type: 'counter', group: 'pipeline', labels: ['stage', 'code'],
    help: 'Failures thrown by a stage, by error code; the batch is redelivered (transient) or the consumer stops (fatal)',
  },
  // ── latency ───────────────────────────────────────────────────────────────────────────────────────────
  pipelineLatency: {
    name: 'starstream_pipeline_latency_seconds', type: 'histogram', group: 'pipeline', labels: [], buckets: LATENCY_BUCKETS,
    help: 'Batch arrival in the pipeline to the recommendation built',
  },
  endToEndLatency: {
    name: 'starstream_end_to_end_latency_seconds', type: 'histogram', group: 'pipeline', labels: [], buckets: LATENCY_BUCKETS,
    help: 'Record appended to the interactions log to its outputs acknowledged by the log (the latency SLO)',
  },
  eventLatency: {
    name: 'starstream_event_latency_seconds', type: 'histogram', group: 'pipeline', labels: [], buckets: EVENT_AGE_BUCKETS,
    help: 'Event time of an interaction to its recommendation acknowledged by the log (includes producer delay; replays of old data land in +Inf)',
  },
  // ── backlog and flow control ──────────────────────────────────────────────────────────────────────────
  consumerLag: {
    name: 'starstream_consumer_lag_records', type: 'gauge', group: 'pipeline', labels: ['topic', 'partition'],
    help: 'Records of the interactions topic not yet committed by the group, per partition this instance consumes',
  },
  inFlight: {
    name: 'starstream_in_flight_records', type: 'gauge', group: 'pipeline', labels: [],
    help: 'Records being processed now (consumed, outputs not yet acknowledged)',
  },
  batchRetries: {
    name: 'starstream_batch_retries_total', type: 'counter', group: 'pipeline', labels: ['consumer'],
    help: 'Batch attempts that failed and are redelivered uncommitted (the same records again), by consumer (interactions, items, item-deltas)',
  },
  batchFailedAttempts: {
    name: 'starstream_batch_failed_attempts', type: 'gauge', group: 'pipeline', labels: ['consumer'],
    help: 'Most attempts in a row that failed, over the batches of this consumer still being retried; 0 when none. A batch stuck on a record or a down dependency keeps it growing (readiness goes false after pipeline.stuckBatchMs)',
  },
  consumptionPaused: {
    name: 'starstream_consumption_paused', type: 'gauge', group: 'pipeline', labels: [],
    help: '1 while consumption is paused by the admin API, else 0',
  },
  // ── vector store ──────────────────────────────────────────────────────────────────────────────────────
  storeOperationDuration: {
    name: 'starstream_store_operation_duration_seconds', type: 'histogram', group: 'pipeline', labels: ['operation'], buckets: STORE_BUCKETS,
    help: 'Time of one vector store port call (retries included), by operation (getUsers, searchItems, applyItemDeltas, …)',
  },
  storeOperationErrors: {
    name: 'starstream_store_operation_errors_total', type: 'counter', group: 'pipeline', labels: ['operation', 'code'],
    help: 'Vector store port calls that failed after retries, by operation and error code',
  },
  storeRoundTripsPerBatch: {
    name: 'starstream_store_round_trips_per_batch', type: 'histogram', group: 'pipeline', labels: [], buckets: ROUND_TRIP_BUCKETS,
    help: 'Requests sent to the remote store (Qdrant; retries, and background refreshes or other consumers\' writes in the same interval, included) while one interaction batch was processed; 0 on the embedded store. Bounded by a constant, whatever the batch size',
  },
  storeUsers: {
    name: 'starstream_store_users', type: 'gauge', group: 'pipeline', labels: [],
    help: 'Users in the vector store (refreshed every few seconds)',
  },
  storeItems: {
    name: 'starstream_store_items', type: 'gauge', group: 'pipeline', labels: [],
    help: 'Items in the vector store (refreshed every few seconds)',
  },
  // ── STAR model ────────────────────────────────────────────────────────────────────────────────────────
  modelInfo: {
    name: 'starstream_model_info', type: 'gauge', group: 'pipeline', labels: ['version', 'provider'],
    help: 'The serving model: value 1, its version and execution provider (cpu, cuda; cpu for the baseline ranker) as labels',
  },
  modelLoads: {
    name: 'starstream_model_loads_total', type: 'counter', group: 'pipeline', labels: [],
    help: 'Models that passed every check and started serving (the first one included)',
  },
  modelRefusals: {
    name: 'starstream_model_refusals_total', type: 'counter', group: 'pipeline', labels: ['code'],
    help: 'Candidate models refused by the registry (the previous one keeps serving), by code (MODEL_PARITY_MISMATCH, …)',
  },
  modelLoadedTime: {
    name: 'starstream_model_loaded_timestamp_seconds', type: 'gauge', group: 'pipeline', labels: [],
    help: 'Unix time at which the serving model started serving; time() minus this is its age',
  },
  starBatchRows: {
    name: 'starstream_star_batch_rows', type: 'histogram', group: 'pipeline', labels: [],
    buckets: [1, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
    help: 'Candidates (rows) per STAR forward pass, after micro-batching',
  },
  starBatchLists: {
    name: 'starstream_star_batch_lists', type: 'histogram', group: 'pipeline', labels: [],
    buckets: [1, 2, 4, 8, 16, 32, 64],
    help: 'Candidate lists (cases) merged into one STAR forward pass',
  },
  starInferenceDuration: {
    name: 'starstream_star_inference_duration_seconds', type: 'histogram', group: 'pipeline', labels: ['provider'], buckets: INFERENCE_BUCKETS,
    help: 'Time of one STAR forward pass (encode + run), by execution provider',
  },
  // ── quality ───────────────────────────────────────────────────────────────────────────────────────────
  onlineCases: {
    name: 'starstream_online_cases_total', type: 'counter', group: 'pipeline', labels: ['model_version'],
    help: 'Recommendations whose user\'s next interaction arrived, by the model version that served the list',
  },
  onlineHits: {
    name: 'starstream_online_hits_total', type: 'counter', group: 'pipeline', labels: ['model_version', 'ranker'],
    help: 'Of those, the ones whose next item was in the top K; ranker=served (the model) or popularity (the same candidates by popularity, a baseline)',
  },
  casesSampled: {
    name: 'starstream_cases_sampled_total', type: 'counter', group: 'pipeline', labels: ['reason'],
    help: 'Ranked events sampled as teacher cases (sent to the teacher-cases topic), by sampling reason (SAMPLING_REASONS)',
  },
  // ── online experiment (src/experiments; `experiment` in the config) ──────────────────────────────────────
  experimentOutcomes: {
    name: 'starstream_experiment_outcomes_total', type: 'counter', group: 'pipeline', labels: ['experiment', 'arm'],
    help: 'Lists of an experiment cell (arm, or holdout) joined to their user\'s next interaction: the trials of hit@K',
  },
  experimentHits: {
    name: 'starstream_experiment_hits_total', type: 'counter', group: 'pipeline', labels: ['experiment', 'arm'],
    help: 'Of those, the ones whose next item was in the top K (experiment.k); ÷ outcomes = the cell\'s hit@K',
  },
  experimentNdcg: {
    name: 'starstream_experiment_ndcg_total', type: 'counter', group: 'pipeline', labels: ['experiment', 'arm'],
    help: 'Sum of NDCG@K over those outcomes; ÷ outcomes = the cell\'s mean NDCG@K',
  },
  experimentScoringDuration: {
    name: 'starstream_experiment_scoring_duration_seconds', type: 'histogram', group: 'pipeline', labels: ['experiment', 'arm'], buckets: EVENT_STAGE_BUCKETS,
    help: 'Scoring time of one list by an arm\'s scorer (stream and API), the latency guardrail\'s measure',
  },
  experimentScoringErrors: {
    name: 'starstream_experiment_scoring_errors_total', type: 'counter', group: 'pipeline', labels: ['experiment', 'arm'],
    help: 'Scoring requests of an arm that failed, the error guardrail\'s measure (÷ the duration histogram\'s _count)',
  },
  experimentArmServing: {
    name: 'starstream_experiment_arm_serving', type: 'gauge', group: 'pipeline', labels: ['experiment', 'arm'],
    help: '1 while the arm serves its own users; 0 once retired (rolled back) or the experiment concluded for another arm',
  },
  experimentDifference: {
    name: 'starstream_experiment_hit_rate_difference', type: 'gauge', group: 'pipeline', labels: ['experiment', 'arm', 'bound'],
    help: 'Challenger − champion hit@K at the latest look: bound=estimate, or lower/upper of its always-valid confidence sequence',
  },
  experimentDecisions: {
    name: 'starstream_experiment_decisions_total', type: 'counter', group: 'pipeline', labels: ['experiment', 'arm', 'verdict', 'code'],
    help: 'Decisions applied by a look: an arm retired (rollback), promoted, or the experiment concluded (inconclusive, rollback), with the verdict code',
  },
  // ── on-demand API ─────────────────────────────────────────────────────────────────────────────────────
  apiRequests: {
    name: 'starstream_api_requests_total', type: 'counter', group: 'pipeline', labels: ['route', 'method', 'status'],
    help: 'HTTP API requests, by route template, method and status code',
  },
  apiDuration: {
    name: 'starstream_api_request_duration_seconds', type: 'histogram', group: 'pipeline', labels: ['route'], buckets: LATENCY_BUCKETS,
    help: 'HTTP API request time, by route template',
  },
  buildInfo: {
    name: 'starstream_build_info', type: 'gauge', group: 'pipeline', labels: ['version', 'event_log', 'store'],
    help: 'Value 1; the starstream version and the adapters this process runs (event log, store) as labels',
  },

  // ── teacher worker ────────────────────────────────────────────────────────────────────────────────────
  // Declared ahead of the teacher worker (src/teacher) so dashboards and alerts can be written and checked;
  // the teacher's composition root creates them with `createMetrics(registry, 'teacher')`. Rename or extend
  // here, regenerate docs/metrics.md, and the dashboard/alert tests point at every query to update.
  teacherCasesReceived: {
    name: 'starstream_teacher_cases_received_total', type: 'counter', group: 'teacher', labels: [],
    help: 'Cases read from the teacher-cases topic',
  },
  teacherCasesCompleted: {
    name: 'starstream_teacher_cases_completed_total', type: 'counter', group: 'teacher', labels: ['result'],
    help: 'Cases finished, by result: kept (outcome-filtered trajectory written), discarded (ranking was wrong), expired (no outcome in time)',
  },
  teacherFailures: {
    name: 'starstream_teacher_failures_total', type: 'counter', group: 'teacher', labels: ['code'],
    help: 'Cases the teacher could not finish, by error code (LLM errors, tool errors, bad output)',
  },
  teacherBacklog: {
    name: 'starstream_teacher_backlog_cases', type: 'gauge', group: 'teacher', labels: [],
    help: 'Cases waiting: consumed or lagging on the topic, not yet finished',
  },
  teacherCaseDuration: {
    name: 'starstream_teacher_case_duration_seconds', type: 'histogram', group: 'teacher', labels: [], buckets: TEACHER_CASE_BUCKETS,
    help: 'Time for the teacher to produce one trajectory (all agents and tool calls)',
  },
  teacherLlmDuration: {
    name: 'starstream_teacher_llm_request_duration_seconds', type: 'histogram', group: 'teacher', labels: ['agent'], buckets: LLM_BUCKETS,
    help: 'Time of one LLM completion, by agent (planner, analyst, reflector, ranker)',
  },
  teacherLlmTokens: {
    name: 'starstream_teacher_llm_tokens_total', type: 'counter', group: 'teacher', labels: ['agent', 'kind'],
    help: 'LLM tokens, by agent and kind (prompt, completion)',
  },
  teacherToolCalls: {
    name: 'starstream_teacher_tool_calls_total', type: 'counter', group: 'teacher', labels: ['tool', 'outcome'],
    help: 'CST tool calls made by the agents, by tool and outcome (ok, error)',
  },
  teacherTurns: {
    name: 'starstream_teacher_turns_total', type: 'counter', group: 'teacher', labels: ['agent', 'outcome'],
    help: 'Agent turns (LLM calls), by agent and outcome: ok, malformed (refused, then retried or failed), error (backend)',
  },
  teacherAgentDuration: {
    name: 'starstream_teacher_agent_duration_seconds', type: 'histogram', group: 'teacher', labels: ['agent'], buckets: TEACHER_CASE_BUCKETS,
    help: 'Time one agent spent on one case (its LLM calls and tool calls), by agent',
  },
  teacherTrajectories: {
    name: 'starstream_teacher_trajectories_total', type: 'counter', group: 'teacher', labels: ['status'],
    help: 'Trajectories the teacher produced, by status (completed, failed)',
  },
  teacherDeadLetters: {
    name: 'starstream_teacher_dead_letters_total', type: 'counter', group: 'teacher', labels: ['code'],
    help: 'Teacher-cases records that could not be decoded and went to the DLQ, by reason code',
  },
} as const satisfies Record<string, MetricSpec>;

export type MetricKey = keyof typeof METRICS;
type Spec<K extends MetricKey> = (typeof METRICS)[K];
type LabelOf<K extends MetricKey> = Spec<K>['labels'][number];
type MetricOf<K extends MetricKey> = Spec<K>['type'] extends 'counter'
  ? Counter<LabelOf<K>>
  : Spec<K>['type'] extends 'gauge'
    ? Gauge<LabelOf<K>>
    : Histogram<LabelOf<K>>;
type KeysOf<G extends MetricGroup> = { [K in MetricKey]: Spec<K>['group'] extends G ? K : never }[MetricKey];

/** The metrics of one process, keyed as in `METRICS`, typed by their labels. */
export type GroupMetrics<G extends MetricGroup> = { readonly [K in KeysOf<G>]: MetricOf<K> };

export function catalogEntries(group?: MetricGroup): MetricSpec[] {
  return Object.values(METRICS as Record<string, MetricSpec>).filter((m) => group === undefined || m.group === group);
}

/**
 * Creates every metric of `group` on `registry`, plus the process metrics (`collectProcessMetrics`: CPU,
 * memory, event loop lag, GC, prefixed `starstream_`) unless `processMetrics` is false. Call once per registry.
 */
export function createMetrics<G extends MetricGroup>(
  registry: Registry,
  group: G,
  options: { processMetrics?: boolean } = {},
): GroupMetrics<G> {
  if (options.processMetrics ?? true) collectProcessMetrics(registry, METRIC_PREFIX);
  const out: Record<string, Counter | Gauge | Histogram> = {};
  for (const [key, spec] of Object.entries(METRICS as Record<string, MetricSpec>)) {
    if (spec.group !== group) continue;
    const common = { name: spec.name, help: spec.help, labelNames: [...spec.labels], registers: [registry] };
    out[key] =
      spec.type === 'counter'
        ? new Counter(common)
        : spec.type === 'gauge'
          ? new Gauge(common)
          : new Histogram({ ...common, buckets: [...(spec.buckets ?? [])] });
  }
  return out as unknown as GroupMetrics<G>;
}
