import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { produceInteractions } from '../../src/cli/produce.ts';
import { generateStream } from '../../src/data/synthetic.ts';
import type { Interaction, Recommendation } from '../../src/domain/events.ts';
import type { DeadLetterRecord } from '../../src/eventlog/codec/avro.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import type { ConsumedBatch, EventConsumer, EventLog, Headers } from '../../src/eventlog/port.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildPipeline, type Pipeline } from '../../src/main.ts';
import { DLQ_HEADERS, EVENT_ID_HEADER } from '../../src/pipeline/outputs.ts';
import { eventually, uniqueName } from '../helpers.ts';

const N = 2_000;
const MALFORMED = { garbageEvery: 397, nonFiniteEvery: 211 };

const config = loadConfig({
  overrides: {
    store: { dimension: 8 },
    ranking: { topK: 5 },
    candidates: { fromEmbedding: 10, fromCooccurrence: 10, fromPopular: 10, maxCandidates: 30 },
    evidence: { neighbours: 5 },
    pipeline: { groupId: uniqueName('runner'), maxBatchRecords: 250 },
    eventLog: { topics: { partitions: 3 } },
  },
});
const logger = silentLogger();
const log: EventLog = createEmbeddedEventLog(config.eventLog, logger);
after(() => log.close());

interface Input {
  readonly partition: number;
  readonly offset: string;
  readonly value: Buffer;
  /** null for records that are not an interaction at all. */
  readonly event: Interaction | null;
}
interface Output {
  readonly rec: Recommendation;
  readonly key: string | null;
  readonly headers: Headers;
}
interface Letter {
  readonly headers: Record<string, string>;
  readonly body: DeadLetterRecord;
}

/** Reads topics from the beginning in its own group, collecting what `collect` returns. */
function reader<T>(topics: string[], collect: (batch: ConsumedBatch) => Promise<T[]>): { items: T[]; consumer: EventConsumer; running: Promise<void> } {
  const items: T[] = [];
  const consumer = log.consumer({ groupId: uniqueName('reader'), topics, fromBeginning: true, maxBatchRecords: 500 });
  const running = consumer.run(async (batch) => {
    items.push(...(await collect(batch)));
  });
  return { items, consumer, running };
}

describe('PipelineRunner on the embedded event log', () => {
  let first: Pipeline;
  let inputs: ReturnType<typeof reader<Input>>;
  let recs: ReturnType<typeof reader<Output>>;
  let letters: ReturnType<typeof reader<Letter>>;

  it('accounts for every input offset by exactly one recommendation or one dead letter', async () => {
    first = await buildPipeline(config, { logger, log });
    const { topics, framing, engine } = first;
    inputs = reader<Input>([topics.interactions], async (batch) =>
      Promise.all(
        batch.records.map(async (r) => ({
          partition: r.partition,
          offset: r.offset,
          value: r.value,
          event: await framing.decode(engine.codecs.interaction, r.value, r.headers).catch(() => null),
        })),
      ),
    );
    recs = reader<Output>([topics.recommendations], async (batch) =>
      Promise.all(
        batch.records.map(async (r) => ({
          rec: await framing.decode(engine.codecs.recommendation, r.value, r.headers),
          key: r.key?.toString('utf8') ?? null,
          headers: r.headers,
        })),
      ),
    );
    letters = reader<Letter>([topics.deadLetters], async (batch) =>
      Promise.all(
        batch.records.map(async (r) => ({
          headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v.toString('utf8')])),
          body: await framing.decode(engine.codecs.deadLetter, r.value, r.headers),
        })),
      ),
    );

    await first.runner.start();
    assert.equal(first.runner.status, 'running');
    assert.equal(first.runner.ready, true);
    const events = generateStream({ events: N, users: 150, items: 300, seed: 11 });
    const sent = await produceInteractions(log, topics.interactions, events, engine.codecs, framing, MALFORMED);
    assert.equal(sent, N);
    await eventually(() => first.runner.processedRecords >= N && recs.items.length + letters.items.length >= N && inputs.items.length >= N, 60_000);
    assert.equal(first.runner.processedRecords, N);
    assert.equal(inputs.items.length, N);

    const garbage = Math.floor(N / MALFORMED.garbageEvery);
    const nonFinite = [...Array(N).keys()].map((i) => i + 1).filter((s) => s % MALFORMED.nonFiniteEvery === 0 && s % MALFORMED.garbageEvery !== 0).length;
    assert.equal(letters.items.length, garbage + nonFinite);
    assert.equal(recs.items.length, N - garbage - nonFinite);

    const recCount = new Map<string, number>();
    for (const { rec } of recs.items) recCount.set(rec.eventId, (recCount.get(rec.eventId) ?? 0) + 1);
    const letterAt = new Map<string, Letter[]>();
    for (const l of letters.items) {
      const at = `${l.headers[DLQ_HEADERS.partition]}/${l.headers[DLQ_HEADERS.offset]}`;
      letterAt.set(at, [...(letterAt.get(at) ?? []), l]);
    }
    for (const input of inputs.items) {
      const at = `${input.partition}/${input.offset}`;
      const byRec = input.event ? (recCount.get(input.event.eventId) ?? 0) : 0;
      const byLetter = letterAt.get(at)?.length ?? 0;
      assert.equal(byRec + byLetter, 1, `input ${at} (${input.event?.eventId ?? 'undecodable'}): ${byRec} recommendations, ${byLetter} dead letters`);
      const letter = letterAt.get(at)?.[0];
      if (letter) {
        assert.equal(letter.headers[DLQ_HEADERS.topic], topics.interactions);
        assert.equal(letter.headers[DLQ_HEADERS.code], input.event ? 'NON_FINITE_VALUE' : 'UNDECODABLE');
        assert.ok((letter.headers[DLQ_HEADERS.reason] ?? '').length > 0);
        assert.equal(letter.body.code, letter.headers[DLQ_HEADERS.code]);
        assert.equal(letter.body.sourceTopic, topics.interactions);
        assert.equal(letter.body.sourcePartition, input.partition);
        assert.equal(letter.body.sourceOffset, input.offset);
        assert.ok(letter.body.payload.equals(input.value), 'the DLQ keeps the original bytes');
      }
    }
  });

  it('keys recommendations by user and tags them with the triggering event id', () => {
    for (const { rec, key, headers } of recs.items) {
      assert.equal(key, rec.userId);
      assert.equal(headers[EVENT_ID_HEADER]?.toString('utf8'), rec.eventId);
      assert.ok(rec.items.length <= 5);
    }
    const full = recs.items.filter((o) => o.rec.items.length === 5).length;
    assert.ok(full > recs.items.length * 0.9, `${full} of ${recs.items.length} lists are full (cold starts are not)`);
  });

  it('stops idempotently and ends in state "stopped"', async () => {
    const a = first.runner.stop();
    const b = first.runner.stop();
    assert.equal(a, b, 'the same shutdown');
    await a;
    assert.equal(first.runner.status, 'stopped');
    assert.equal(first.runner.ready, false);
    await first.runner.stop();
    await first.runner.done();
    assert.equal(first.runner.status, 'stopped');
    await assert.rejects(first.runner.start(), /cannot start/);
  });

  it('a restart in the same group on the same log processes nothing twice', async () => {
    const second = await buildPipeline(config, { logger, log });
    const lettersBefore = letters.items.length;
    try {
      await second.runner.start();
      const more = [...generateStream({ events: 100, users: 20, items: 50, seed: 12 })].map((e) => ({ ...e, eventId: `second-${e.eventId}` }));
      const { topics, framing, engine } = second;
      await produceInteractions(log, topics.interactions, more, engine.codecs, framing, { garbageEvery: 0, nonFiniteEvery: 0 });
      // The new records come after the old ones in every partition, so once their outputs are out, any
      // reprocessing of the old ones would have happened already.
      await eventually(() => recs.items.filter((o) => o.rec.eventId.startsWith('second-')).length >= more.length, 30_000);
      await second.runner.stop();
      assert.equal(second.runner.processedRecords, more.length);
      const ids = recs.items.map((o) => o.rec.eventId);
      assert.equal(new Set(ids).size, ids.length, 'no recommendation was published twice');
      assert.equal(letters.items.length, lettersBefore, 'no dead letter was written again');
    } finally {
      await second.runner.stop();
      for (const r of [inputs, recs, letters]) await r.consumer.stop();
    }
  });
});
