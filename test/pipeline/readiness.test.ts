import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { FatalError, TransientError } from '../../src/errors/index.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import type { ConsumerHealth, EventLog, OutgoingRecord } from '../../src/eventlog/port.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildPipeline, buildProcessor, type Pipeline } from '../../src/main.ts';
import { startOpsServer } from '../../src/ops/server.ts';
import { pipelineReadiness } from '../../src/ops/service.ts';
import { PipelineRunner } from '../../src/pipeline/runner.ts';
import type { InteractionDecoder } from '../../src/stages/ingest/index.ts';
import { eventually, tinyWorldEvent, uniqueName } from '../helpers.ts';

/**
 * Issue 16, finding 4 ("readiness lies"): `/readyz` must say not-ready while a batch is stuck, failing and
 * redelivered, past `pipeline.stuckBatchMs`, and after a consumer failed fatally. The embedded log redelivers
 * after a few real milliseconds; the runner judges "how long" by a clock the test moves, so no assertion
 * depends on how fast this machine is.
 */

const NOW = Date.now();
const logger = silentLogger();
const STUCK_MS = 1_000;

const event = (i: number): Interaction => tinyWorldEvent(i, NOW - 60_000);

interface Harness {
  readonly log: EventLog;
  readonly pipeline: Pipeline;
  readonly recommended: Set<string>;
  send(events: readonly Interaction[]): Promise<void>;
}

async function harness(): Promise<Harness> {
  const config = loadConfig({
    overrides: {
      store: { dimension: 8 },
      pipeline: { groupId: uniqueName('ready'), maxBatchRecords: 50 },
      eventLog: { topics: { partitions: 1, prefix: `${uniqueName('t')}.` }, embedded: { redeliveryDelayMs: 5, maxRedeliveryDelayMs: 20 } },
    },
  });
  const log = createEmbeddedEventLog(config.eventLog, logger);
  after(() => log.close());
  const pipeline = await buildPipeline(config, { logger, log });
  const { topics, framing, engine } = pipeline;
  const recommended = new Set<string>();
  const reader = log.consumer({ groupId: uniqueName('reader'), topics: [topics.recommendations], fromBeginning: true, maxBatchRecords: 100 });
  void reader.run(async (batch) => {
    for (const r of batch.records) recommended.add((await framing.decode(engine.codecs.recommendation, r.value, r.headers)).eventId);
  });
  after(() => reader.stop());
  const producer = log.producer();
  return {
    log,
    pipeline,
    recommended,
    send: async (events) => {
      const records: OutgoingRecord[] = [];
      for (const e of events) {
        const framed = await framing.encode(engine.codecs.interaction, e, topics.interactions);
        records.push({ topic: topics.interactions, key: e.userId, value: framed.value, headers: framed.headers });
      }
      await producer.send(records);
    },
  };
}

/** The pipeline's runner with another interaction decoder and a clock the test moves; metrics as `run` has them. */
function runnerWith(h: Harness, decode: InteractionDecoder, clock: () => number, log: EventLog = h.log): PipelineRunner {
  const { pipeline } = h;
  const runner = new PipelineRunner({
    log,
    processor: buildProcessor(pipeline.engine, { decode }),
    store: pipeline.engine.store,
    codecs: pipeline.engine.codecs,
    framing: pipeline.framing,
    topics: pipeline.topics,
    instruments: pipeline.metrics,
    logger,
    groupId: uniqueName('ready-group'),
    maxBatchRecords: 50,
    fromBeginning: true,
    stuckBatchMs: STUCK_MS,
    clock,
  });
  after(() => runner.stop());
  return runner;
}

async function gauge(h: Harness, series: string): Promise<number> {
  const line = (await h.pipeline.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}

describe('readiness tells the truth (issue 16, finding 4)', () => {
  it('goes false while one batch keeps failing past pipeline.stuckBatchMs, and true again once it succeeds', async () => {
    const h = await harness();
    let nowMs = NOW;
    let failing = true;
    let attempts = 0;
    const decode: InteractionDecoder = (record) => {
      attempts++;
      if (failing) throw new TransientError('SCHEMA_REGISTRY_UNAVAILABLE', 'schema registry GET /schemas/ids/1: HTTP 503');
      return h.pipeline.framing.decode(h.pipeline.engine.codecs.interaction, record.value, record.headers);
    };
    const runner = runnerWith(h, decode, () => nowMs);
    const readiness = pipelineReadiness({ ...h.pipeline, runner }, logger);
    const server = await startOpsServer({ host: '127.0.0.1', port: 0, registry: h.pipeline.metrics.registry, readiness });
    after(() => server.close());

    await runner.start();
    assert.deepEqual(runner.health(), { ready: true, reasons: [], stuck: null });
    await h.send([event(1), event(2), event(3)]);

    // The clock moves in steps shorter than stuckBatchMs, each followed by one more failed attempt: the batch
    // is being retried all along, as it would be in real time (redeliveries come at least every
    // maxRedeliveryDelayMs, which stuckBatchMs must exceed).
    const failAgain = async (stepMs: number): Promise<void> => {
      nowMs += stepMs;
      const seen = attempts;
      await eventually(() => attempts > seen, 20_000, 1);
    };
    await failAgain(0);
    await failAgain(400);
    await failAgain(400);
    assert.equal(runner.health().ready, true, 'failing for 800 ms of a 1,000 ms threshold: still ready');
    assert.ok((await gauge(h, 'starstream_batch_failed_attempts{consumer="interactions"}')) >= 2);

    await failAgain(400);
    await eventually(() => (runner.health().stuck?.failures ?? 0) >= 1, 20_000, 1);
    const health = runner.health();
    assert.equal(health.ready, false);
    assert.equal(health.stuck?.consumer, 'interactions');
    assert.equal(health.stuck?.topic, h.pipeline.topics.interactions);
    assert.equal(health.stuck?.partition, 0);
    assert.equal(health.stuck?.offset, '0', 'the same batch, from its first offset, all along');
    assert.match(health.reasons.join('\n'), /interactions batch stuck for 1200 ms .* partition 0 from offset 0, \d+ failed attempts in a row/);

    const res = await fetch(`${server.url}/readyz`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { status: string; checks: Record<string, boolean>; reasons: string[] };
    assert.equal(body.status, 'not ready');
    assert.deepEqual(body.checks, { consuming: false, store: true, model: true });
    assert.match(body.reasons.join('\n'), /interactions batch stuck for 1200 ms/);
    const failures = await gauge(h, 'starstream_batch_failed_attempts{consumer="interactions"}');
    assert.ok(failures >= 3, `gauge ${failures}`);
    assert.ok((await gauge(h, 'starstream_batch_retries_total{consumer="interactions"}')) >= failures);

    failing = false;
    await eventually(() => h.recommended.size === 3, 20_000);
    await eventually(() => runner.processedRecords === 3, 20_000);
    assert.deepEqual(runner.health(), { ready: true, reasons: [], stuck: null });
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    assert.equal(await gauge(h, 'starstream_batch_failed_attempts{consumer="interactions"}'), 0);
  });

  it('goes false while a consumer crashed and is restarting, or its fetches go unanswered past stuckBatchMs', async () => {
    const h = await harness();
    let nowMs = NOW;
    // The runner on a log whose consumers report whatever health the test sets, by topic (the adapters' side
    // is test/eventlog/consumer-health.test.ts and the contract).
    const healths = new Map<string, ConsumerHealth>();
    const fine: ConsumerHealth = { notFetching: null, fetchUnansweredSinceMs: null };
    const log: EventLog = {
      kind: 'kafka',
      ensureTopics: async () => {},
      producer: () => h.log.producer(),
      consumer: (options) => ({
        run: () => new Promise<void>(() => {}),
        health: () => healths.get(options.topics[0] ?? '') ?? fine,
        pause: () => {},
        resume: () => {},
        lag: async () => [],
        stop: async () => {},
      }),
      close: async () => {},
    };
    const runner = runnerWith(h, () => Promise.reject(new Error('no batch is ever delivered')), () => nowMs, log);
    const { interactions, items } = h.pipeline.topics;
    await runner.start();
    assert.equal(runner.ready, true);

    healths.set(interactions, { notFetching: 'crashed, kafkajs restarts it (KAFKA_CONNECTION)', fetchUnansweredSinceMs: null });
    assert.deepEqual(runner.health().reasons, ['interactions consumer not fetching: crashed, kafkajs restarts it (KAFKA_CONNECTION)']);
    healths.delete(interactions);
    assert.equal(runner.ready, true, 'rejoined');

    healths.set(items, { notFetching: null, fetchUnansweredSinceMs: nowMs });
    nowMs += STUCK_MS;
    assert.equal(runner.ready, true, 'a fetch waiting exactly stuckBatchMs is not yet too long');
    nowMs += 1;
    assert.deepEqual(runner.health().reasons, [`items consumer not fetching: the log has not answered a fetch for ${STUCK_MS + 1} ms`]);
    healths.delete(items);
    assert.equal(runner.ready, true);
  });

  it('goes false for good once a consumer fails fatally, and says which and why', async () => {
    const h = await harness();
    const auth = new FatalError('SCHEMA_REGISTRY_AUTH', 'schema registry GET /schemas/ids/1: HTTP 401');
    const runner = runnerWith(h, () => Promise.reject(auth), Date.now);
    await runner.start();
    assert.equal(runner.ready, true);
    await h.send([event(1)]);
    await assert.rejects(runner.done(), (err) => err === auth);
    const health = runner.health();
    assert.equal(health.ready, false);
    assert.equal(runner.status, 'running', 'the lifecycle alone would still say ready: what readiness said before');
    assert.ok(health.reasons.includes('interactions consumer failed (SCHEMA_REGISTRY_AUTH)'), health.reasons.join('\n'));
    assert.ok(health.reasons.includes('interactions consumer not fetching: failed (SCHEMA_REGISTRY_AUTH)'), health.reasons.join('\n'));
    // The failed batch is not "stuck": it is not retried, and the failure says all there is to say.
    assert.equal(health.stuck, null);
  });
});
