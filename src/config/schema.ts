import { z } from 'zod';
import { experimentSchema } from '../experiments/definition.ts';

/**
 * The one configuration schema. Every field has a default and, where it has one, its unit in its name.
 * Loaded once at startup by `loadConfig` (file, then `STARSTREAM_*` env), validated, frozen, and passed down.
 * `starstream config --docs` prints this schema as the reference table in the README.
 */

const positiveInt = () => z.number().int().positive();
const nonNegativeInt = () => z.number().int().nonnegative();

const retrySchema = z
  .strictObject({
    retries: nonNegativeInt().default(5).describe('Retries after the first try of a transient failure'),
    initialDelayMs: positiveInt().default(100).describe('First backoff delay, ms'),
    maxDelayMs: positiveInt().default(5_000).describe('Backoff ceiling, ms'),
    multiplier: z.number().min(1).default(2).describe('Backoff growth per retry'),
    jitter: z.number().min(0).max(1).default(0.2).describe('Random share of each delay, 0..1'),
  })
  .prefault({});

const topicsSchema = z
  .strictObject({
    prefix: z.string().default('starstream.').describe('Prepended to every topic name'),
    interactions: z.string().min(1).default('interactions').describe('Input: interaction events, keyed by user'),
    items: z.string().min(1).default('items').describe('Input: item catalogue, compacted, keyed by item'),
    recommendations: z.string().min(1).default('recommendations').describe('Output: ranked lists, keyed by user'),
    deadLetters: z.string().min(1).default('dlq').describe('Output: records that could not be used'),
    teacherCases: z.string().min(1).default('teacher-cases').describe('Side stream: cases sampled for the teacher'),
    trajectories: z.string().min(1).default('trajectories').describe('Side stream: labelled teacher trajectories'),
    itemDeltas: z.string().min(1).default('item-deltas').describe('Item-side updates keyed by item (store.itemWrites = routed)'),
    partitions: positiveInt().default(6).describe('Partitions of topics created by starstream'),
    replicationFactor: positiveInt().default(1).describe('Replication of topics created by starstream'),
    retentionMs: positiveInt()
      .default(7 * 86_400_000)
      .describe('Retention of the non-compacted stream topics (interactions, recommendations, side streams), ms'),
    deadLettersRetentionMs: positiveInt()
      .default(30 * 86_400_000)
      .describe('Retention of the DLQ, ms; longer so bad records can still be inspected and replayed'),
    maxMessageBytes: positiveInt()
      .default(1_048_588)
      .describe(
        'max.message.bytes of created topics other than the DLQ (Kafka default); the DLQ gets twice this plus 64 KiB, so a dead letter of any record the input took fits',
      ),
    deadLetterMaxBytes: positiveInt()
      .min(1_024)
      .default(524_288)
      .describe(
        'Original bytes (key, headers, value) one dead letter carries; beyond, it keeps a prefix and is flagged truncated with the value size and SHA-256. Below 1 MiB so a DLQ topic at the Kafka default takes it',
      ),
    minInSyncReplicas: positiveInt()
      .optional()
      .describe('min.insync.replicas of created topics; unset = min(2, replicationFactor) so acks=all survives a broker loss'),
  })
  .prefault({});

const kafkaSchema = z
  .strictObject({
    brokers: z.array(z.string().min(1)).min(1).default(['localhost:9092']).describe('Bootstrap servers'),
    clientId: z.string().min(1).default('starstream').describe('Client id sent to the brokers'),
    ssl: z.boolean().default(false).describe('Use TLS'),
    sasl: z
      .strictObject({
        mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).describe('SASL mechanism'),
        username: z.string().min(1).describe('SASL user'),
        password: z.string().min(1).describe('SASL password; set it with …_PASSWORD_FILE from a mounted secret'),
      })
      .optional()
      .describe('SASL authentication; password from env or a *_FILE'),
    sessionTimeoutMs: positiveInt().default(30_000).describe('Consumer group session timeout, ms'),
    heartbeatIntervalMs: positiveInt().default(3_000).describe('Consumer heartbeat interval, ms'),
    connectionTimeoutMs: positiveInt().default(3_000).describe('Broker connection timeout, ms'),
    schemaRegistryUrl: z.string().url().optional().describe('Confluent schema registry; unset = registry-free framing'),
    schemaRegistryTimeoutMs: positiveInt().default(5_000).describe('Schema registry request timeout, ms'),
    sslCaFile: z.string().min(1).optional().describe('PEM file of the CA that signed the brokers (ssl = true); unset = system CAs'),
    sslCertFile: z.string().min(1).optional().describe('PEM client certificate for mutual TLS (with sslKeyFile)'),
    sslKeyFile: z.string().min(1).optional().describe('PEM private key of sslCertFile'),
    sslRejectUnauthorized: z.boolean().default(true).describe('Verify the brokers\' certificates; false only for local tests'),
    requestTimeoutMs: positiveInt().default(30_000).describe('Broker request timeout, ms'),
    fetchMaxWaitMs: positiveInt()
      .default(500)
      .describe('Longest a fetch waits on the broker for data, ms; also bounds how long stop() waits for a fetch'),
    rebalanceTimeoutMs: positiveInt().default(60_000).describe('Time members get to rejoin during a rebalance, ms'),
    redeliveryDelayMs: positiveInt().default(200).describe('First wait before a failed batch is handed over again, ms'),
    maxRedeliveryDelayMs: positiveInt().default(5_000).describe('Ceiling of that wait as failures repeat, ms'),
    exactlyOnce: z
      .boolean()
      .default(false)
      .describe(
        'Kafka transactions: a batch\'s outputs (recommendations, dead letters, item deltas, teacher cases) and its ' +
          'consumed offsets commit together or not at all; readers use read_committed. One transactional id per ' +
          'consumed partition (starstream.{groupId}.{topic}.{partition}), so its next owner fences the last. No ' +
          'effect on the embedded log (a send is all or nothing, and nothing survives the process)',
      ),
    retry: retrySchema.describe('Client retries of transient broker errors (connect, produce, metadata)'),
  })
  .prefault({});

const eventLogSchema = z
  .strictObject({
    kind: z.enum(['embedded', 'kafka']).default('embedded').describe('embedded = in-process log; kafka = kafkajs'),
    topics: topicsSchema,
    kafka: kafkaSchema,
    embedded: z
      .strictObject({
        maxBacklogRecords: positiveInt()
          .default(100_000)
          .describe('Producers wait while a topic holds this many records no group has committed'),
        retainUnconsumedRecords: positiveInt()
          .default(100_000)
          .describe(
            'Records a partition keeps while no consumer group reads its topic (for groups that join later ' +
              'with fromBeginning); older ones are dropped, as Kafka retention would',
          ),
        redeliveryDelayMs: positiveInt().default(50).describe('First wait before a failed batch is handed over again, ms'),
        maxRedeliveryDelayMs: positiveInt().default(2_000).describe('Ceiling of that wait as failures repeat, ms'),
      })
      .prefault({}),
  })
  .prefault({});

const storeSchema = z
  .strictObject({
    kind: z.enum(['embedded', 'qdrant']).default('embedded').describe('embedded = in-process index; qdrant'),
    itemWrites: z
      .enum(['direct', 'routed'])
      .default('direct')
      .describe(
        'direct = each instance applies its own item deltas (one instance, or the embedded store); routed = through ' +
          'the item-keyed item-deltas topic, one writer per item, item state eventually consistent. Qdrant shared ' +
          'by more than one instance needs routed (direct loses concurrent item updates; a warning at startup)',
      ),
    dimension: positiveInt().max(1024).default(32).describe('Embedding dimension'),
    userHistoryLength: positiveInt().max(1000).default(50).describe('Recent items kept per user'),
    maxUsersInMemory: nonNegativeInt()
      .default(0)
      .describe(
        'Users held in memory; past 5% more, the least recently seen are retired down to it and their slots reused ' +
          '(embedded: forgotten; qdrant: evicted from the hot tier and read again on next use). 0 = no bound',
      ),
    itemAudienceLength: positiveInt().max(1000).default(50).describe('Recent users kept per item'),
    consumedFilterBytes: positiveInt()
      .max(65_536)
      .default(1_024)
      .describe('Bloom filter of consumed items per user, bytes (1 KiB ≈ 1% false positives at 700 items)'),
    cooccurrenceWindow: positiveInt().max(100).default(5).describe('A new item co-occurs with this many previous items'),
    cooccurrenceLimit: positiveInt().max(10_000).default(200).describe('Co-occurring items kept per item'),
    popularityShortHalfLifeMs: positiveInt().default(86_400_000).describe('Half-life of the short popularity window, ms'),
    popularityLongHalfLifeMs: positiveInt()
      .default(30 * 86_400_000)
      .describe('Half-life of the long popularity window, ms'),
    embedded: z
      .strictObject({
        path: z
          .string()
          .optional()
          .describe(
            'Snapshot file; unset = memory only. A pipeline writes it as a checkpoint (state with the source offsets it ' +
              'reflects) periodically and at shutdown, and resumes from it',
          ),
        checkpointIntervalMs: nonNegativeInt()
          .default(30_000)
          .describe('A checkpoint is due this long after the last one (with a path), ms; 0 = not by time'),
        checkpointEveryBatches: nonNegativeInt()
          .default(0)
          .describe('…or after this many batches (all consumers); 0 = not by count. Neither = only at shutdown'),
        exactSearchBelow: nonNegativeInt()
          .default(5_000)
          .describe('Collections smaller than this are searched exactly; from this size an HNSW graph is built'),
        hnswM: positiveInt().default(16).describe('HNSW links per node'),
        hnswEfConstruction: positiveInt().default(64).describe('HNSW build-time candidate list'),
        hnswEfSearch: positiveInt()
          .default(200)
          .describe(
            'HNSW query-time candidate list (at least k + excluded ids is used). At 100k vectors, d=32, M=16, k=50: ' +
              '64 gives recall@50 0.82–0.91, 200 gives 0.96–0.97 at ~2× the search time',
          ),
        rebuildDirtyFraction: z
          .number()
          .min(0)
          .max(1)
          .default(0.05)
          .describe(
            'Refresh the HNSW graph once this fraction of a collection changed since its snapshot (new, or moved ' +
              'beyond reindexDrift); until then those are searched exactly (a flat scan, ~30 ns per vector at d=32), ' +
              'so this bounds that scan',
          ),
        rebuildDirtyMin: positiveInt()
          .default(2_000)
          .describe('…and at least this many changed (small collections would otherwise refresh on every few writes)'),
        reindexDrift: z
          .number()
          .min(0)
          .default(0.3)
          .describe(
            'A vector in the HNSW graph counts as changed (searched exactly until the next refresh) only once its ' +
              'relative L2 distance from its position in the graph, |v - v_graph| / |v_graph|, exceeds this; a ' +
              'smaller move is still found through its graph position and scored with its current vector. 0 = every ' +
              'change counts. At 100k, d=32, BPR drift: recall@50 0.96 at 0.15 to 1',
          ),
        indexBuild: z
          .enum(['worker', 'inline'])
          .default('worker')
          .describe(
            'worker = HNSW refreshes run in a worker thread and swap in when done (the event loop never blocks on ' +
              'them; which searches see the new graph depends on timing); inline = they run synchronously at the ' +
              'write that crosses the threshold, so results depend only on the write sequence (tests, replays)',
          ),
      })
      .prefault({}),
    qdrant: z
      .strictObject({
        url: z
          .string()
          .url()
          .default('http://localhost:6333')
          .describe('Qdrant REST endpoint, http(s); without a port the scheme\'s (80/443) is used, Qdrant listens on 6333'),
        apiKey: z.string().optional().describe('Qdrant API key; from env or a *_FILE'),
        collectionPrefix: z.string().default('starstream_').describe('Prepended to `users` and `items`'),
        timeoutMs: positiveInt().default(5_000).describe('Request timeout, ms'),
        createCollections: z
          .boolean()
          .default(true)
          .describe('init() creates missing collections; false = only check them (`starstream store init` creates)'),
        hnswM: positiveInt().default(16).describe('HNSW links per node of new collections'),
        hnswEfConstruction: positiveInt().default(64).describe('HNSW build-time candidate list of new collections'),
        hnswEfSearch: positiveInt().default(64).describe('HNSW query-time candidate list (`hnsw_ef`)'),
        shardNumber: positiveInt().default(1).describe('Shards of new collections (Qdrant cluster)'),
        replicationFactor: positiveInt().default(1).describe('Replicas of each shard of new collections'),
        maxBatchPoints: positiveInt().max(10_000).default(500).describe('Points per retrieve/upsert request'),
        excludeStrategy: z
          .enum(['filter', 'overfetch'])
          .default('filter')
          .describe('How searches skip `exclude`: a must_not filter on `id`, or fetch k+|exclude| and drop'),
        cacheTtlMs: positiveInt()
          .default(5_000)
          .describe(
            'Hot tier (`store/tiered`): a profile read from Qdrant that this process did not write is refreshed in the ' +
              'background once older than this on a read (never blocking it), and an id Qdrant lacked is asked again after it, ms',
          ),
      })
      .prefault({}),
    retry: retrySchema,
  })
  .prefault({});

const embeddingsSchema = z
  .strictObject({
    learningRate: z.number().positive().max(1).default(0.05).describe('SGD step size of the BPR update'),
    regularization: z.number().nonnegative().default(0.002).describe('L2 weight decay per update'),
    negatives: positiveInt().max(64).default(8).describe('Sampled negatives per positive interaction'),
    initScale: z.number().positive().default(0.1).describe('Std-dev of new vectors'),
    seed: z.number().int().default(7).describe('Seed of vector init and negative sampling'),
  })
  .prefault({});

const candidatesSchema = z
  .strictObject({
    fromEmbedding: nonNegativeInt().default(50).describe('Nearest items to the user vector'),
    fromCooccurrence: nonNegativeInt().default(50).describe('Items co-occurring with the recent items'),
    fromPopular: nonNegativeInt().default(20).describe('Popular items (all users; cold users lean on them)'),
    recentItemsForCooccurrence: positiveInt().default(10).describe('How many recent items seed co-occurrence'),
    maxCandidates: positiveInt().default(100).describe('Upper bound of the union'),
    excludeConsumed: z.boolean().default(true).describe('Drop items in the user\'s recent history'),
  })
  .prefault({});

const evidenceSchema = z
  .strictObject({
    neighbours: nonNegativeInt().default(20).describe('Nearest users read for user-CF evidence'),
    maxSentences: positiveInt().default(4).describe('Sentences kept per candidate'),
  })
  .prefault({});

const rankingSchema = z
  .strictObject({
    topK: positiveInt().max(1000).default(10).describe('Items per published recommendation'),
    scorer: z
      .enum(['baseline', 'star', 'online'])
      .default('baseline')
      .describe('baseline = collaborative features; online = their blend learned from each next event, behind a guard'),
    online: z
      .strictObject({
        loss: z.enum(['listwise', 'pairwise']).default('listwise').describe('listwise = softmax over the joined list; pairwise = against its top k'),
        learningRate: z.number().nonnegative().max(1).default(0.005).describe('Step size of the update (0 = guard only)'),
        l2: z.number().nonnegative().default(0.02).describe('Pull toward the start (baseline) weights, per update'),
        maxPendingUsers: positiveInt().default(10_000).describe('Users whose last list is kept to join with their next event'),
        guardWindow: positiveInt().default(2_000).describe('Joined outcomes the guard compares hit rates over'),
        guardMinOutcomes: positiveInt().default(1_000).describe('No guard decision before this many outcomes'),
        guardMargin: z
          .number()
          .nonnegative()
          .max(1)
          .default(0.015)
          .describe('A single signal (or the start weights) serves when it leads the blend\'s hit rate by more than this'),
      })
      .prefault({})
      .describe('The online blend (scorer = online), src/star/online/'),
    modelDir: z.string().optional().describe('STAR model registry directory (scorer = star)'),
    executionProvider: z
      .enum(['cpu', 'cuda'])
      .default('cpu')
      .describe('onnxruntime provider for STAR; cuda falls back to cpu (logged) where the CUDA provider cannot load'),
    microBatchMaxCandidates: positiveInt()
      .default(512)
      .describe('STAR micro-batch: candidates (rows) per forward pass at which a batch of concurrent lists closes'),
    microBatchMaxWaitMs: nonNegativeInt()
      .default(2)
      .describe('STAR micro-batch: longest a list waits for others to share its forward pass, ms'),
    intraOpThreads: nonNegativeInt().default(0).describe('onnxruntime threads per operator (CPU); 0 = all cores'),
    registryPollMs: nonNegativeInt()
      .default(5_000)
      .describe('How often the STAR registry\'s CURRENT file is read for a new model, ms; 0 = never'),
    parityTolerance: z
      .number()
      .positive()
      .default(1e-3)
      .describe('Largest |score difference| from a model\'s parity.jsonl before it is refused'),
    retireGraceMs: nonNegativeInt()
      .default(30_000)
      .describe('A replaced STAR model keeps serving requests that took it before the swap this long, ms'),
  })
  .prefault({});

const publishSchema = z
  .strictObject({
    minIntervalPerUserMs: nonNegativeInt()
      .default(0)
      .describe('At most one recommendation per user per interval (event time); 0 = every event'),
  })
  .prefault({});

const pipelineSchema = z
  .strictObject({
    groupId: z.string().min(1).default('starstream').describe('Consumer group of the pipeline'),
    maxBatchRecords: positiveInt().default(500).describe('Records handed to one pipeline batch'),
    rankingEnabled: z.boolean().default(true).describe('false = ingest and learn only'),
    maxEventAgeMs: nonNegativeInt()
      .default(0)
      .describe('Events older than this vs. the wall clock are rejected; 0 = no limit (replays of old data)'),
    maxFutureSkewMs: positiveInt().default(5 * 60_000).describe('Events this far in the future are rejected'),
    stuckBatchMs: positiveInt()
      .default(60_000)
      .describe(
        '/readyz answers 503 while one batch has been failing and redelivered (or in its handler) this long, or a ' +
          'fetch has gone unanswered this long, ms; keep it above eventLog.*.maxRedeliveryDelayMs',
      ),
  })
  .prefault({});

const opsSchema = z
  .strictObject({
    host: z.string().default('127.0.0.1').describe('Address of the metrics/health/API server'),
    port: z.number().int().min(0).max(65_535).default(9464).describe('Port of that server; 0 = any free port'),
    apiToken: z.string().optional().describe('Bearer token for the API; from env or a *_FILE'),
  })
  .prefault({});

// ---- sampling: the side stream (sampler, outcome join, dataset export) ----

const samplingSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe('Sample ranked events as teacher cases onto the teacher-cases topic (create it first on Kafka)'),
    casesPerMinute: z
      .number()
      .positive()
      .default(6)
      .describe('Budget: cases per minute of event time per pipeline instance, all strategies together'),
    burstCases: positiveInt().default(10).describe('Largest burst of cases (token bucket capacity), split by weight'),
    candidatesPerCase: positiveInt().max(200).default(20).describe('Candidates in a case, the serving scorer\'s best first'),
    seed: z.number().int().default(11).describe('Seed of the sampler\'s draws (each a function of seed and event id)'),
    weights: z
      .strictObject({
        uniform: z.number().nonnegative().default(1).describe('Share of the budget for any event'),
        uncertain: z.number().nonnegative().default(1).describe('Share for events with a small top-2 score margin'),
        coldUser: z.number().nonnegative().default(1).describe('Share for users with few interactions'),
        longTail: z.number().nonnegative().default(1).describe('Share for candidate lists dominated by tail items'),
      })
      .prefault({})
      .describe('Relative budget share per strategy; 0 turns one off'),
    uncertainMaxMargin: z
      .number()
      .nonnegative()
      .default(0.05)
      .describe('uncertain: top-1 minus top-2 score at most this (serving scorer units)'),
    coldUserMaxInteractions: nonNegativeInt()
      .default(5)
      .describe('cold-user: at most this many interactions, the triggering one included'),
    longTailMaxPopularityShare: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe('long-tail: a tail item has at most this share of the most popular candidate\'s popularity'),
    longTailMinShare: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe('long-tail: at least this share of the case\'s candidates are tail items'),
    rateWindowMs: positiveInt()
      .default(10 * 60_000)
      .describe('Time constant of the eligible-event rate estimate behind each strategy\'s acceptance probability, ms'),
    outcomes: z
      .strictObject({
        horizonMs: positiveInt()
          .default(30 * 60_000)
          .describe('A case is labelled by the user\'s next interaction within this much event time, else expired'),
        allowedLatenessMs: nonNegativeInt()
          .default(60_000)
          .describe('Event-time slack before expiring, for partitions read behind the others'),
        maxBufferedPerUser: positiveInt()
          .max(1_000)
          .default(16)
          .describe('Interactions kept per user for cases that arrive after the interaction that labels them'),
        dataDir: z
          .string()
          .min(1)
          .default('data/teacher')
          .describe('Journal of pending cases and of trajectories waiting for outcomes (survives restarts)'),
        compactAfterEntries: positiveInt()
          .default(10_000)
          .describe('Journal entries appended before it is rewritten as a snapshot of what is pending'),
      })
      .prefault({}),
    dataset: z
      .strictObject({
        dir: z.string().min(1).default('data/teacher/dataset').describe('Where labelled trajectories are exported'),
        maxRecordsPerFile: positiveInt().default(10_000).describe('Records per JSON-lines file before it rotates'),
        keep: z
          .enum(['top1', 'topk', 'all'])
          .default('top1')
          .describe('Kept when the teacher ranked the observed item first (top1), within keepTopK (topk), or always'),
        keepTopK: positiveInt().default(3).describe('k of keep = topk'),
        maxPendingPairs: positiveInt()
          .default(10_000)
          .describe('Trajectories (and outcomes) waiting for their other half, each; the oldest is dropped beyond it'),
      })
      .prefault({}),
  })
  .prefault({});

// ---- teacher.llm: the MARS teacher's language model (src/teacher/llm) ----

const teacherLlmSchema = z
  .strictObject({
    backend: z
      .enum(['llama', 'openai'])
      .default('llama')
      .describe('llama = a local GGUF in-process (node-llama-cpp, CPU); openai = an OpenAI-compatible chat endpoint'),
    modelPath: z
      .string()
      .min(1)
      .optional()
      .describe(
        'llama: the GGUF file; unset = gemma-3-270m-q4_k_m.gguf as `npm run teacher:model` fetches it, in ' +
          '$STAR_MODELS or ~/.cache/starstream/models',
      ),
    contextSize: positiveInt()
      .default(8192)
      .describe('llama: tokens per sequence; prompt + answer must fit (a 20-candidate case with tool outputs needs ~5–7k)'),
    sequences: positiveInt()
      .max(64)
      .default(1)
      .describe('llama: requests served in parallel, each with its own contextSize KV cache; more wait in order'),
    threads: nonNegativeInt()
      .default(1)
      .describe(
        'llama: CPU threads; 0 = all cores. 1 leaves the other cores to the hot path: llama.cpp threads spin, ' +
          'and with more threads than free cores generation slows down several-fold',
      ),
    baseUrl: z
      .string()
      .url()
      .default('http://127.0.0.1:8080/v1')
      .describe('openai: endpoint up to the version path; requests go to {baseUrl}/chat/completions'),
    model: z.string().min(1).optional().describe('openai: the model name sent with each request (required there)'),
    apiKey: z.string().min(1).optional().describe('openai: bearer token; set it from env or a mounted secret (…_API_KEY_FILE)'),
    responseFormat: z
      .enum(['auto', 'json_schema', 'json_object_schema', 'json_object'])
      .default('auto')
      .describe(
        'openai: how the answer schema is sent; auto = json_schema, stepping down to json_object with a schema ' +
          '(llama-cpp-python) and then plain json_object when the server refuses it',
      ),
    strictSchema: z.boolean().default(true).describe('openai: json_schema.strict (every property must then be required)'),
    timeoutMs: positiveInt()
      .default(120_000)
      .describe('One request (openai: one try; llama: queueing included), ms; the per-case limit can cut it sooner'),
    retry: retrySchema.describe('openai: retries of timeouts, unreachable endpoints, 429 and 5xx'),
    temperature: z.number().min(0).max(2).default(0).describe('Sampling temperature of requests that set none; 0 = greedy'),
  })
  .superRefine((llm, ctx) => {
    if (llm.backend === 'openai' && !llm.model) {
      ctx.addIssue({ code: 'custom', path: ['model'], message: 'required when backend = openai' });
    }
  })
  .prefault({});

// ---- teacher.limits and the worker (src/teacher/run.ts, src/teacher/worker.ts) ----

const teacherLimitsSchema = z
  .strictObject({
    maxTurns: positiveInt().default(40).describe('LLM calls per case, retries of malformed answers included'),
    maxAnalystTurns: positiveInt()
      .max(50)
      .default(4)
      .describe('Turns of one analyst pass (tool calls, then the finding); the last turn may only give the finding'),
    maxToolCalls: nonNegativeInt().default(16).describe('Tool calls per case; once spent, analysts may only finish'),
    maxTokens: positiveInt().default(120_000).describe('Prompt + completion tokens per case'),
    maxCompletionTokens: positiveInt().default(768).describe('Completion tokens per LLM call'),
    maxWallMs: positiveInt().default(300_000).describe('Wall time per case, ms; the LLM call in flight is aborted'),
    maxRetries: nonNegativeInt().max(10).default(2).describe('Retries of a malformed agent answer before the case fails'),
    maxReflectionRounds: nonNegativeInt().max(5).default(1).describe('Times the reflector may send analysts back'),
    maxToolItems: positiveInt().max(100).default(10).describe('Entries (items, users) one tool response lists'),
    maxToolOutputChars: positiveInt().default(2_000).describe('Characters of one tool response; longer ones are cut'),
  })
  .prefault({});

/** The teacher worker. Its per-case limits sit beside `llm`. */
const teacherSchema = z
  .strictObject({
    llm: teacherLlmSchema,
    limits: teacherLimitsSchema,
    concurrency: positiveInt()
      .max(64)
      .default(1)
      .describe('Cases run at once by one worker; above llm.sequences (llama) they queue for the model while their wall time runs'),
    groupId: z.string().min(1).default('starstream-teacher').describe('Consumer group of the teacher worker'),
    maxBatchRecords: positiveInt().default(8).describe('Cases handed to the worker at once; committed when all are produced'),
    maxCaseAttempts: positiveInt()
      .max(20)
      .default(3)
      .describe('Tries of a case that failed for a retriable reason (backend or store away) before its failed trajectory is kept'),
  })
  .prefault({});

// ---- distill: the distillation loop (src/distill, `starstream distill`) ----

const distillSchema = z
  .strictObject({
    stateDir: z
      .string()
      .min(1)
      .default('data/distill')
      .describe('Cursor (dataset parts already used), one folder per run (training input, challenger) and the decision reports'),
    trajectoriesDir: z
      .string()
      .min(1)
      .optional()
      .describe('Labelled-trajectory data set to train from; unset = sampling.dataset.dir'),
    casesFile: z
      .string()
      .min(1)
      .optional()
      .describe('Outcome-only case file (`starstream cases export`); when set, the held-out window is taken from it (20-candidate protocol)'),
    registryDir: z.string().min(1).optional().describe('STAR model registry to publish into; unset = ranking.modelDir'),
    margin: z
      .number()
      .min(-1)
      .max(1)
      .default(0.005)
      .describe('Publish only when the challenger\'s average of HR@1/3/5 (0..1) exceeds the champion\'s by more than this; a tie never wins at ≥ 0'),
    holdoutShare: z
      .number()
      .gt(0)
      .lt(1)
      .default(0.1)
      .describe('Most recent share of the evaluation cases held out (never trained on) to compare challenger and champion'),
    minHoldoutCases: positiveInt().default(50).describe('Fewer held-out cases than this: the run trains nothing and says so'),
    preset: z.enum(['tiny', 'cpu', 'gpu']).default('cpu').describe('Trainer preset (train/starstream_train/train.py PRESETS)'),
    trainerSettings: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))
      .default({})
      .describe('TrainConfig overrides passed as --set key=value, e.g. {"epochs": 2}'),
    python: z.string().min(1).optional().describe('Python of the trainer; unset = train/.venv/bin/python (bash train/install.sh)'),
    keepRuns: positiveInt().default(3).describe('Run folders (training input, challenger model) kept under stateDir/runs; reports are all kept'),
    publishTo: z
      .enum(['champion', 'experiment'])
      .default('champion')
      .describe('Where a challenger that passes the gate goes: champion = the registry\'s CURRENT; experiment = into the registry beside it, with an experiment section (stateDir/experiments/VERSION.json) to test it on live traffic'),
    experimentShare: z
      .number()
      .gt(0)
      .lt(1)
      .default(0.5)
      .describe('The challenger\'s share of the experiment\'s traffic when publishTo = experiment'),
  })
  .prefault({});

export const configSchema = z
  .strictObject({
    logLevel: z
    .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
    .default('info')
    .describe('Structured (JSON) log level, on stderr'),
    eventLog: eventLogSchema,
    store: storeSchema,
    embeddings: embeddingsSchema,
    candidates: candidatesSchema,
    evidence: evidenceSchema,
    ranking: rankingSchema,
    publish: publishSchema,
    pipeline: pipelineSchema,
    sampling: samplingSchema,
    teacher: teacherSchema,
    distill: distillSchema,
    ops: opsSchema,
    experiment: experimentSchema
      .optional()
      .describe('An online experiment: arms served to users by a stable hash, judged on live outcomes (src/experiments/); unset = none'),
    shutdownDeadlineMs: positiveInt().default(25_000).describe('SIGTERM to exit, ms; Kubernetes grace should exceed it'),
  })


export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
