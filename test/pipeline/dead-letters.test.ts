import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import type { Interaction, Item } from '../../src/domain/events.ts';
import { FatalError, TransientError } from '../../src/errors/index.ts';
import type { DeadLetterRecord } from '../../src/eventlog/codec/avro.ts';
import { SCHEMA_HEADER, type Framing } from '../../src/eventlog/codec/framing.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import type { EventLog, LogRecord, OutgoingRecord } from '../../src/eventlog/port.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildPipeline, buildProcessor, type Pipeline } from '../../src/main.ts';
import { NO_INSTRUMENTS } from '../../src/pipeline/instruments.ts';
import { boundDeadLetter, DLQ_HEADERS } from '../../src/pipeline/outputs.ts';
import { PipelineRunner } from '../../src/pipeline/runner.ts';
import type { InteractionDecoder } from '../../src/stages/ingest/index.ts';
import { eventually, tinyWorldEvent, uniqueName } from '../helpers.ts';

/**
 * Issue 16, "nothing a producer sends can stop the stream": which failures become dead letters (only bad
 * input, for every consumer), and that a dead letter always fits the DLQ topic, however large the record.
 */

const NOW = Date.now();
const logger = silentLogger();

function configFor(): Config {
  return loadConfig({
    overrides: {
      store: { dimension: 8 },
      ranking: { topK: 5 },
      candidates: { fromEmbedding: 5, fromCooccurrence: 5, fromPopular: 5, maxCandidates: 15 },
      evidence: { neighbours: 3 },
      pipeline: { groupId: uniqueName('dlq'), maxBatchRecords: 50 },
      eventLog: { topics: { partitions: 1, prefix: `${uniqueName('t')}.` }, embedded: { redeliveryDelayMs: 10, maxRedeliveryDelayMs: 50 } },
    },
  });
}

const event = (i: number): Interaction => tinyWorldEvent(i, NOW - 60_000);

interface Harness {
  readonly config: Config;
  readonly log: EventLog;
  readonly pipeline: Pipeline;
  readonly letters: { headers: Record<string, Buffer>; body: DeadLetterRecord }[];
  readonly recommended: Set<string>;
  send(records: OutgoingRecord[]): Promise<void>;
  interaction(e: Interaction): Promise<OutgoingRecord>;
}

/** A pipeline on its own embedded log, with readers of the DLQ and the recommendations. */
async function harness(): Promise<Harness> {
  const config = configFor();
  const log = createEmbeddedEventLog(config.eventLog, logger);
  after(() => log.close());
  const pipeline = await buildPipeline(config, { logger, log });
  const { topics, framing, engine } = pipeline;
  const letters: Harness['letters'] = [];
  const recommended = new Set<string>();
  const readers = log.consumer({ groupId: uniqueName('reader'), topics: [topics.deadLetters, topics.recommendations], fromBeginning: true, maxBatchRecords: 100 });
  void readers.run(async (batch) => {
    for (const r of batch.records) {
      if (r.topic === topics.deadLetters) letters.push({ headers: { ...r.headers }, body: await framing.decode(engine.codecs.deadLetter, r.value, r.headers) });
      else recommended.add((await framing.decode(engine.codecs.recommendation, r.value, r.headers)).eventId);
    }
  });
  after(() => readers.stop());
  const producer = log.producer();
  return {
    config,
    log,
    pipeline,
    letters,
    recommended,
    send: (records) => producer.send(records),
    interaction: async (e) => {
      const framed = await framing.encode(engine.codecs.interaction, e, topics.interactions);
      return { topic: topics.interactions, key: e.userId, value: framed.value, headers: framed.headers };
    },
  };
}

/** A runner like `buildPipeline`'s, with another framing (items) or decoder (interactions). */
function runnerWith(h: Harness, options: { framing?: Framing; decode?: InteractionDecoder }): PipelineRunner {
  const { pipeline, config } = h;
  const runner = new PipelineRunner({
    log: h.log,
    processor: options.decode ? buildProcessor(pipeline.engine, { decode: options.decode }) : pipeline.processor,
    store: pipeline.engine.store,
    codecs: pipeline.engine.codecs,
    framing: options.framing ?? pipeline.framing,
    topics: pipeline.topics,
    instruments: NO_INSTRUMENTS,
    logger,
    groupId: config.pipeline.groupId,
    maxBatchRecords: config.pipeline.maxBatchRecords,
    fromBeginning: true,
  });
  after(() => runner.stop());
  return runner;
}

/** A framing whose item decoding fails with `err` for the first `times` calls (a registry outage). */
function failingItems(base: Framing, err: Error, times: number): Framing & { calls: number } {
  const framing = {
    kind: base.kind,
    calls: 0,
    encode: base.encode,
    decode: async <T>(codec: Parameters<Framing['decode']>[0], value: Buffer, headers: LogRecord['headers']): Promise<T> => {
      if (codec.name === 'item' && framing.calls++ < times) throw err;
      return base.decode(codec, value, headers) as Promise<T>;
    },
  };
  return framing as Framing & { calls: number };
}

const item: Item = { itemId: 'i1', title: 'Twister (1996)', categories: ['Action'], description: null, attributes: {}, timestampMs: NOW };

async function sendItem(h: Harness): Promise<void> {
  const framed = await h.pipeline.framing.encode(h.pipeline.engine.codecs.item, item, h.pipeline.topics.items);
  await h.send([{ topic: h.pipeline.topics.items, key: item.itemId, value: framed.value, headers: framed.headers }]);
}

describe('only bad input is dead-lettered, in every consumer (issue 16)', () => {
  it('interactions: a registry 5xx is retried (batch redelivered), never dead-lettered', async () => {
    const h = await harness();
    let failures = 3;
    const decode: InteractionDecoder = (record) => {
      if (failures > 0) {
        failures--;
        throw new TransientError('SCHEMA_REGISTRY_UNAVAILABLE', 'schema registry GET /schemas/ids/1: HTTP 503');
      }
      return h.pipeline.framing.decode(h.pipeline.engine.codecs.interaction, record.value, record.headers);
    };
    const runner = runnerWith(h, { decode });
    await runner.start();
    const events = Array.from({ length: 20 }, (_, i) => event(i));
    await h.send(await Promise.all(events.map((e) => h.interaction(e))));
    await eventually(() => h.recommended.size === events.length, 20_000);
    assert.equal(failures, 0, 'the registry did fail');
    assert.deepEqual(h.letters, [], 'valid events are not dead-lettered for the registry');
  });

  it('interactions: a fatal error (refused credentials) stops the consumer, dead-letters nothing, commits nothing', async () => {
    const h = await harness();
    const auth = new FatalError('SCHEMA_REGISTRY_AUTH', 'schema registry GET /schemas/ids/1: HTTP 401');
    const runner = runnerWith(h, { decode: () => Promise.reject(auth) });
    await runner.start();
    await h.send([await h.interaction(event(1))]);
    await assert.rejects(runner.done(), (err) => err === auth);
    assert.equal(runner.processedRecords, 0);
    assert.deepEqual(h.letters, []);
  });

  it('items: a registry 5xx is retried until the catalogue record reaches the store, never dead-lettered', async () => {
    const h = await harness();
    const framing = failingItems(h.pipeline.framing, new TransientError('SCHEMA_REGISTRY_UNAVAILABLE', 'HTTP 503'), 2);
    const runner = runnerWith(h, { framing });
    await runner.start();
    await sendItem(h);
    await eventually(async () => (await h.pipeline.engine.store.getItems([item.itemId])).get(item.itemId)?.title === item.title, 20_000);
    assert.ok(framing.calls >= 3, `decoded ${framing.calls} times`);
    assert.deepEqual(h.letters, []);
  });

  it('items: a fatal error stops the runner (run() rejects, so `starstream run` exits 1), no dead letter', async () => {
    const h = await harness();
    const auth = new FatalError('SCHEMA_REGISTRY_AUTH', 'HTTP 401');
    const runner = runnerWith(h, { framing: failingItems(h.pipeline.framing, auth, Number.POSITIVE_INFINITY) });
    await runner.start();
    await sendItem(h);
    await assert.rejects(runner.done(), (err) => err === auth);
    assert.deepEqual(h.letters, []);
  });

  it('items: an unclassified error is fatal too (INGEST_UNCLASSIFIED, with the cause), not a dead letter', async () => {
    const h = await harness();
    const bug = new TypeError('a bug');
    const runner = runnerWith(h, { framing: failingItems(h.pipeline.framing, bug, Number.POSITIVE_INFINITY) });
    await runner.start();
    await sendItem(h);
    await assert.rejects(runner.done(), (err) => err instanceof FatalError && err.code === 'INGEST_UNCLASSIFIED' && err.cause === bug);
    assert.deepEqual(h.letters, []);
  });
});

describe('a dead letter always fits the DLQ topic (issue 16)', () => {
  it('a ~1 MiB record the input topic takes is dead-lettered truncated, with its size and SHA-256; the stream goes on', async () => {
    const h = await harness();
    await h.pipeline.runner.start();
    // As in the issue: a 1,048,400-byte value, under the input's max.message.bytes (Kafka's default 1,048,588),
    // with a DLQ topic at the same default (created on first use, as a broker's auto-create would).
    const big = Buffer.alloc(1_048_400, 0xab);
    big.write('not avro', 0);
    const headers = { [SCHEMA_HEADER]: Buffer.from('starstream.v1.Interaction@0123456789abcdef'), trace: Buffer.from('t-1') };
    await h.send([{ topic: h.pipeline.topics.interactions, key: 'u1', value: big, headers }]);
    const after = await Promise.all([event(1), event(2), event(3)].map((e) => h.interaction(e)));
    await h.send(after);
    await eventually(() => h.letters.length === 1 && h.recommended.size === 3, 20_000);

    const letter = h.letters[0]!;
    const body = letter.body;
    assert.equal(body.truncated, true);
    assert.equal(body.payloadSize, big.length);
    assert.equal(body.payloadSha256, createHash('sha256').update(big).digest('hex'));
    // Key and the (small) headers are kept whole; the value gets what is left of the bound.
    assert.deepEqual(body.key, Buffer.from('u1'));
    assert.deepEqual(body.headers, headers);
    const kept = 2 + Object.entries(headers).reduce((n, [k, v]) => n + Buffer.byteLength(k) + v.length, 0);
    assert.equal(body.payload.length, h.config.eventLog.topics.deadLetterMaxBytes - kept);
    assert.ok(big.subarray(0, body.payload.length).equals(body.payload), 'a prefix of the original bytes');
    assert.equal(body.code, 'UNKNOWN_SCHEMA');
    assert.equal(letter.headers[DLQ_HEADERS.code]?.toString(), 'UNKNOWN_SCHEMA');
  });

  it('the embedded log refuses a record over max.message.bytes, as a broker does (what stopped the stream before)', async () => {
    const h = await harness();
    const topic = h.pipeline.topics.deadLetters;
    await assert.rejects(h.send([{ topic, key: null, value: Buffer.alloc(h.config.eventLog.topics.maxMessageBytes) }]), { code: 'MESSAGE_TOO_LARGE' });
  });
});

describe('boundDeadLetter', () => {
  const envelope = (payload: Buffer, key: Buffer | null = Buffer.from('k'), headers: Record<string, Buffer> = {}): DeadLetterRecord => ({
    reason: 'r',
    code: 'C',
    sourceTopic: 't',
    sourcePartition: 0,
    sourceOffset: '0',
    key,
    payload,
    failedAtMs: 1,
    payloadNull: false,
    headers,
    truncated: false,
    payloadSize: payload.length,
    payloadSha256: createHash('sha256').update(payload).digest('hex'),
  });

  it('keeps a letter within the bound whole, to the byte', () => {
    const e = envelope(Buffer.alloc(1_000, 1), Buffer.from('key'), { h: Buffer.from('v') });
    assert.deepEqual(boundDeadLetter(e, 1_000 + 3 + 2), e);
  });

  it('fills key, then whole headers in order, then a value prefix; sets truncated and keeps the original size and hash', () => {
    const e = envelope(Buffer.alloc(5_000, 7), Buffer.alloc(10, 1), { a: Buffer.alloc(99, 2), big: Buffer.alloc(3_000, 3), c: Buffer.alloc(9, 4) });
    const b = boundDeadLetter(e, 2_048);
    assert.equal(b.truncated, true);
    assert.deepEqual(b.key, e.key);
    assert.deepEqual(Object.keys(b.headers), ['a', 'c']);
    assert.equal(b.payload.length, 2_048 - 10 - 100 - 10);
    assert.equal(b.payloadSize, 5_000);
    assert.equal(b.payloadSha256, e.payloadSha256);
  });

  it('a key over the bound by itself is cut, and nothing else is kept', () => {
    const b = boundDeadLetter(envelope(Buffer.alloc(10), Buffer.alloc(5_000), { a: Buffer.alloc(1) }), 1_024);
    assert.equal(b.key?.length, 1_024);
    assert.deepEqual(b.headers, {});
    assert.equal(b.payload.length, 0);
    assert.equal(b.truncated, true);
  });
});
