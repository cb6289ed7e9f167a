/**
 * The vector store unavailable for a while, mid-run (RELIABILITY.md "Faults", issue 9), on the embedded event
 * log: the fast variant, in `npm test`. The Kafka variant is `kafka/store-outage.test.ts`.
 *
 * The store refuses every call for longer than the `store.retry` budget (`test/store/outage.ts`: what the
 * Qdrant adapter throws on ECONNREFUSED, or a real Qdrant behind a shut proxy when QDRANT_URL is set). The
 * pipeline must ride it out by itself: the failed batches are not committed and come again, nothing is
 * dead-lettered for it, every input offset is answered (recommendation or, for the garbage mixed in, a dead
 * letter), repeats stay within the batches in flight, and every good event is learned once (at most one
 * partially written batch again). How soon the stream resumes is reported (`t.diagnostic`), never asserted
 * against the wall clock. A fatal store error (401) instead stops the runner loudly and commits nothing past
 * the failed batch.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { produceInteractions, produceItems } from '../../src/cli/produce.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { generateCatalogue, generateStream } from '../../src/data/synthetic.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { FatalError } from '../../src/errors/index.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import type { ConsumedBatch, EventLog } from '../../src/eventlog/port.ts';
import type { Logger } from '../../src/logging/logger.ts';
import { buildPipeline, type Pipeline } from '../../src/main.ts';
import { DLQ_HEADERS, EVENT_ID_HEADER } from '../../src/pipeline/outputs.ts';
import { createEmbeddedStore } from '../../src/store/embedded/index.ts';
import type { VectorStore } from '../../src/store/port.ts';
import { eventually, uniqueName } from '../helpers.ts';
import { storeTargets, OutageStore } from '../store/outage.ts';
import {
  account,
  assertAccountedFor,
  describeAccounting,
  position,
  type InputRecord,
  type Position,
  type SeenDeadLetter,
  type SeenRecommendation,
} from './kafka/accounting.ts';
import { capturingLogger, injectOutage, redeliveries, relearned } from './outage-scenario.ts';

const N = 4_000;
const PARTITIONS = 3;
const MAX_BATCH = 100;
const GARBAGE_EVERY = 250;
const GARBAGE = Math.floor(N / GARBAGE_EVERY);
const OUTAGE_MS = 2_500;
/** Input pace: one chunk of GARBAGE_EVERY records every CHUNK_MS, so the stream is still flowing when the store goes. */
const CHUNK_MS = 250;
/** Retry budget of one store call: 25 + 50 + 100 ms (± jitter), far below the outage. */
const STORE_RETRY = { retries: 3, initialDelayMs: 25, maxDelayMs: 200, multiplier: 2, jitter: 0.2 };

function testConfig(): Readonly<Config> {
  return loadConfig({
    overrides: {
      store: { dimension: 8, retry: STORE_RETRY },
      ranking: { topK: 5 },
      candidates: { fromEmbedding: 10, fromCooccurrence: 10, fromPopular: 10, maxCandidates: 30 },
      evidence: { neighbours: 5 },
      pipeline: { groupId: uniqueName('outage'), maxBatchRecords: MAX_BATCH },
      eventLog: { topics: { partitions: PARTITIONS } },
    },
  });
}

/** The three topics read back in groups of their own, in the accounting's shape (`kafka/accounting.ts`). */
interface Ledger {
  readonly inputs: Map<Position, InputRecord>;
  readonly recommendations: Map<string, SeenRecommendation[]>;
  readonly deadLetters: Map<Position, SeenDeadLetter[]>;
  answered: number;
}

function readLedger(t: TestContext, log: EventLog, pipeline: Pipeline): Ledger {
  const { topics, framing, engine } = pipeline;
  const ledger: Ledger = { inputs: new Map(), recommendations: new Map(), deadLetters: new Map(), answered: 0 };
  const read = (topic: string, take: (batch: ConsumedBatch) => Promise<void>): void => {
    const consumer = log.consumer({ groupId: uniqueName('ledger'), topics: [topic], fromBeginning: true, maxBatchRecords: 500 });
    void consumer.run(take);
    t.after(() => consumer.stop());
  };
  read(topics.interactions, async (batch) => {
    for (const r of batch.records) {
      const event = await framing.decode(engine.codecs.interaction, r.value, r.headers).catch(() => null);
      const key = r.key?.toString('utf8') ?? null;
      ledger.inputs.set(position(r.partition, r.offset), { partition: r.partition, offset: r.offset, key, eventId: event?.eventId ?? null, userId: event?.userId ?? null });
    }
  });
  read(topics.recommendations, async (batch) => {
    for (const r of batch.records) {
      const eventId = r.headers[EVENT_ID_HEADER]?.toString('utf8') ?? '(none)';
      const seen = { eventId, key: r.key?.toString('utf8') ?? null, partition: r.partition, offset: r.offset };
      ledger.recommendations.set(eventId, [...(ledger.recommendations.get(eventId) ?? []), seen]);
      ledger.answered++;
    }
  });
  read(topics.deadLetters, async (batch) => {
    for (const r of batch.records) {
      const h = (name: string): string => r.headers[name]?.toString('utf8') ?? '';
      const source = { topic: h(DLQ_HEADERS.topic), partition: Number(h(DLQ_HEADERS.partition)), offset: h(DLQ_HEADERS.offset) };
      const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v.toString('utf8')]));
      const seen: SeenDeadLetter = { source, code: h(DLQ_HEADERS.code), reason: h(DLQ_HEADERS.reason), key: r.key, headers, partition: r.partition, offset: r.offset };
      const at = position(source.partition, source.offset);
      ledger.deadLetters.set(at, [...(ledger.deadLetters.get(at) ?? []), seen]);
      ledger.answered++;
    }
  });
  return ledger;
}

/**
 * Sends `events` in chunks of GARBAGE_EVERY, one chunk every `intervalMs` (by schedule); with `garbage`, the last
 * record of each chunk is bytes that are no interaction. Resolves with the records sent.
 */
async function producePaced(log: EventLog, pipeline: Pipeline, events: readonly Interaction[], intervalMs: number, garbage = true): Promise<number> {
  const started = Date.now();
  let sent = 0;
  for (let i = 0; i < events.length; i += GARBAGE_EVERY) {
    const chunk = events.slice(i, i + GARBAGE_EVERY);
    const mix = { garbageEvery: garbage ? GARBAGE_EVERY : 0, nonFiniteEvery: 0 };
    sent += await produceInteractions(log, pipeline.topics.interactions, chunk, pipeline.engine.codecs, pipeline.framing, mix);
    const dueMs = started + (i / GARBAGE_EVERY + 1) * intervalMs - Date.now();
    if (dueMs > 0) await new Promise((r) => setTimeout(r, dueMs));
  }
  return sent;
}

/** No new output for this long while inputs are unanswered: the pipeline is stuck (a slow one still moves). */
const STALL_MS = 30_000;

/**
 * Waits until every input is answered, as long as outputs keep coming: how long that takes depends on the
 * store and the machine, so only a stall (or a stopped runner) fails it, with the accounting so far.
 */
async function waitAccounted(ledger: Ledger, failed: () => string | null): Promise<ReturnType<typeof account>> {
  let seen = ledger.answered;
  let movedAt = Date.now();
  for (;;) {
    const result = account(ledger);
    if (ledger.inputs.size >= N && result.missing.length === 0) return result;
    const why = failed() ?? (Date.now() - movedAt > STALL_MS ? `no output for ${STALL_MS} ms` : null);
    if (why) throw new Error(`${why}: ${N} inputs expected, ${ledger.inputs.size} read; ${describeAccounting(result)}`);
    if (ledger.answered !== seen) {
      seen = ledger.answered;
      movedAt = Date.now();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function start(t: TestContext, config: Readonly<Config>, store: VectorStore, logger: Logger): Promise<{ log: EventLog; pipeline: Pipeline }> {
  const log = createEmbeddedEventLog(config.eventLog, logger);
  t.after(() => log.close());
  const pipeline = await buildPipeline(config, { logger, log, store });
  t.after(() => pipeline.runner.stop());
  return { log, pipeline };
}

const targets = await storeTargets();

// A safety net for a hung run, not a bound on speed: the waits inside fail on a stall, with what they saw.
describe('vector store unavailable mid-run, embedded event log', { timeout: 600_000 }, () => {
  for (const target of targets) {
    it(`rides out a ${OUTAGE_MS} ms outage: resumes by itself, every offset answered, nothing dead-lettered for it (${target.name})`, { skip: target.skip }, async (t) => {
      const config = testConfig();
      const opened = await target.open(config);
      t.after(() => opened.cleanup());
      const captured = capturingLogger();
      const { log, pipeline } = await start(t, config, opened.store, captured.logger);
      const ledger = readLedger(t, log, pipeline);
      let stoppedWith: unknown = null;
      pipeline.runner.done().catch((err: unknown) => (stoppedWith = err));
      await pipeline.runner.start();

      const events = [...generateStream({ events: N, users: 200, items: 400, seed: 91 })];
      const { topics, engine, framing } = pipeline;
      const startedAt = Date.now();
      const producing = producePaced(log, pipeline, events, CHUNK_MS);
      const catalogue = generateCatalogue({ items: 50, seed: 93 }).map((item) => ({ ...item, itemId: `cat-${item.itemId}`, title: `title of ${item.itemId}` }));
      // Every GARBAGE_EVERY-th event is sent as garbage: those never reach the store.
      const good = events.filter((_, i) => (i + 1) % GARBAGE_EVERY !== 0);

      const failedBatches = (): number => Object.values(redeliveries(captured.lines())).reduce((a, b) => a + b, 0);
      const report = await injectOutage({
        control: opened.control,
        answered: () => ledger.answered,
        failedBatches,
        startAfter: N / 4,
        outageMs: OUTAGE_MS,
        timeoutMs: 120_000,
        failed: () => (stoppedWith ? `the runner stopped: ${String(stoppedWith)}` : null),
        // The catalogue consumer writes to the store too: its batches must wait out the outage, not be dropped.
        whileDown: () => produceItems(log, topics.items, catalogue, engine.codecs, framing),
      });
      assert.equal(await producing, N);
      const result = await waitAccounted(ledger, () => (stoppedWith ? `the runner stopped: ${String(stoppedWith)}` : null));
      const codes = redeliveries(captured.lines());
      const twice = await relearned(opened.store, good);
      t.diagnostic(describeAccounting(result));
      t.diagnostic(
        `outage ${report.outageMs} ms: ${report.failedBatches} failed batch attempts ${JSON.stringify(codes)}, ` +
          `${report.answeredWhileDown} outputs while down, first output ${report.recoveryMs} ms after it ended; ` +
          `${result.extraAnswers} duplicates; ${twice} events learned twice; ${opened.stats()}; ` +
          `all ${N} inputs answered ${Date.now() - startedAt} ms after the first was sent`,
      );

      assertAccountedFor(result, { inputs: N, deadLettered: GARBAGE, deadLetterCodes: ['UNDECODABLE'], maxExtraAnswers: MAX_BATCH * PARTITIONS });
      assert.equal(stoppedWith, null, 'the runner kept running');
      assert.equal(pipeline.runner.status, 'running');
      assert.ok(report.failedBatches > 0, 'the outage failed batches');
      assert.deepEqual(Object.keys(codes).filter((c) => c !== 'STORE_UNAVAILABLE' && c !== 'STORE_TIMEOUT'), [], 'batches failed only for the store');
      assert.ok(report.answeredWhileDown <= MAX_BATCH * PARTITIONS, `${report.answeredWhileDown} outputs while the store was down`);
      // Resumed: outputs came after the outage (injectOutage waited for them). How soon is a figure, reported
      // above, not a bound: on a busy machine any wall-clock bound flakes (issue 18).
      assert.ok(report.answeredAfterUp > 0, 'outputs after the outage');
      const stored = await eventually(async () => {
        const items = await opened.store.getItems(catalogue.map((i) => i.itemId));
        return catalogue.every((c) => items.get(c.itemId)?.title === c.title);
      }, 10_000).catch(() => null);
      assert.ok(stored, 'the catalogue records sent during the outage reached the store after it');
      // Every good event learned: none skipped (< 0), at most one batch written in part and then again.
      assert.ok(twice >= 0 && twice <= MAX_BATCH, `${twice} events learned twice (or lost, if negative)`);
    });
  }

  it('a fatal store error (401) stops the runner loudly, dead-letters nothing and commits nothing past it', async (t) => {
    const config = testConfig();
    const s = config.store;
    const store = new OutageStore(createEmbeddedStore({ ...s, ...s.embedded, path: undefined }), s.retry);
    const captured = capturingLogger();
    const { log, pipeline } = await start(t, config, store, captured.logger);
    const ledger = readLedger(t, log, pipeline);
    await pipeline.runner.start();
    const events = [...generateStream({ events: 2_000, users: 100, items: 200, seed: 92 })];
    const producing = producePaced(log, pipeline, events, CHUNK_MS, false);
    await eventually(() => ledger.answered >= 400, 30_000);
    store.down('unauthorized');
    const stopped = await Promise.race([
      pipeline.runner.done().then(
        () => null,
        (err: unknown) => err,
      ),
      new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000).unref()),
    ]);
    await producing;
    assert.ok(stopped instanceof FatalError, `runner.done(): ${String(stopped)}`);
    assert.equal(stopped.code, 'STORE_AUTH');
    const fatal = captured.lines().filter((l) => l['level'] === 60 && l['msg'] === 'consumer failed');
    assert.equal(fatal.length, 1, 'one fatal log line names the failed consumer');
    assert.equal(fatal[0]!['code'], 'STORE_AUTH');
    assert.equal(store.failedCalls >= 1, true);
    assert.equal(store.refusedAttempts, store.failedCalls, 'a fatal error is not retried');
    // Nothing was skipped: what was not answered is still uncommitted (a restart with the key fixed takes it up).
    await pipeline.runner.stop();
    const lag = await pipeline.runner.lag();
    assert.ok(lag > 0, 'the stream stopped before its end');
    await eventually(() => ledger.answered + lag === events.length, 10_000).catch(() => undefined);
    assert.equal(ledger.answered, events.length - lag, `lag ${lag}: every committed record answered once, every other one uncommitted`);
    assert.equal(ledger.deadLetters.size, 0, 'no dead letters');
    t.diagnostic(`fatal STORE_AUTH after ${ledger.answered} outputs: runner stopped, ${lag} records left uncommitted`);
  });
});
