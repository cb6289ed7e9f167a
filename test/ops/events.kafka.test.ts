/**
 * `POST /v1/events` on a real broker: accepted events are produced to the interactions topic (keyed by user,
 * framed as every producer frames them) and the pipeline consuming that topic learns them; refused ones are
 * on the dead-letter topic. The broker comes from KAFKA_BROKERS (`npm test` sets it); run alone, the file
 * starts a local broker.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { generateStream } from '../../src/data/synthetic.ts';
import type { DeadLetterRecord } from '../../src/eventlog/codec/avro.ts';
import { SCHEMA_HEADER } from '../../src/eventlog/codec/framing.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildPipeline } from '../../src/main.ts';
import { HTTP_SOURCE_TOPIC } from '../../src/ops/api/events.ts';
import { startPipelineOpsServer } from '../../src/ops/service.ts';
import { eventually, uniqueName } from '../helpers.ts';
import { brokers, createTestTopics, encodeInteractions, onCleanup, pipelineEnv, stopOwnBroker, testEventLog } from '../pipeline/kafka/harness.ts';

after(() => stopOwnBroker());

const TOKEN = 'kafka-events-token-0123';

describe('POST /v1/events on Kafka', () => {
  it('produces accepted events to the interactions topic, which the pipeline learns; refused ones to the DLQ topic', async (t) => {
    const env = pipelineEnv({ brokers: await brokers(), partitions: 2, maxBatchRecords: 100, extra: { STARSTREAM_OPS__API_TOKEN: TOKEN } });
    const setup = await createTestTopics(t, env);
    const config = loadConfig({ env, overrides: { store: { dimension: 16 }, ops: { host: '127.0.0.1' } } });
    const pipeline = await buildPipeline(config, { logger: silentLogger() });
    const server = await startPipelineOpsServer(config, pipeline, silentLogger());
    onCleanup(t, async () => {
      await server.close();
      await pipeline.runner.stop();
      await pipeline.scorers.close();
      await pipeline.log.close();
      await pipeline.engine.store.close();
    });
    await pipeline.runner.start();

    // A world for the new user to join, produced as any producer would.
    const startMs = Date.now() - 86_400_000;
    const world = [...generateStream({ users: 30, items: 60, events: 300, seed: 5, startMs, durationMs: 3_600_000 })];
    const log = testEventLog(t, setup);
    const producer = log.producer();
    await producer.send([...encodeInteractions(setup, world)]);
    await eventually(() => pipeline.runner.processedRecords >= world.length, 300_000);

    const seen: { key: string | null; schema: string | null; event: Interaction }[] = [];
    const letters: DeadLetterRecord[] = [];
    const reader = log.consumer({ groupId: uniqueName('reader'), topics: [setup.topics.interactions, setup.topics.deadLetters], fromBeginning: true, maxBatchRecords: 500 });
    const reading = reader.run(async (batch) => {
      for (const r of batch.records) {
        if (batch.topic === setup.topics.deadLetters) letters.push(await setup.framing.decode(setup.codecs.deadLetter, r.value, r.headers));
        else seen.push({ key: r.key?.toString('utf8') ?? null, schema: r.headers[SCHEMA_HEADER]?.toString('utf8') ?? null, event: setup.codecs.interaction.decode(r.value) });
      }
    });
    onCleanup(t, async () => {
      await reader.stop();
      await reading;
    });

    const user = 'kafka-user';
    const at = Date.now() - 60_000;
    const mine = world.slice(-3).map((e, i): Interaction => ({ ...e, eventId: `${user}-${i}`, userId: user, timestampMs: at + i }));
    const res = await fetch(`${server.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ events: [...mine, { ...mine[0], eventId: 'bad', type: 'like' }] }),
    });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { accepted: 3, rejected: 1, errors: [{ index: 3, code: 'UNKNOWN_EVENT_TYPE', message: 'unknown event type "like"' }] });

    const onTopic = (await eventually(() => {
      const found = seen.filter((s) => s.event.userId === user);
      return found.length >= 3 ? found : null;
    }, 300_000))!;
    assert.deepEqual(onTopic.map((s) => s.event.eventId).sort(), mine.map((e) => e.eventId));
    for (const s of onTopic) {
      assert.equal(s.key, user, 'keyed by user, as ingest requires');
      assert.match(s.schema ?? '', /^starstream\.v1\.Interaction@[0-9a-f]{16}$/);
    }
    const letter = (await eventually(() => letters.find((l) => l.sourceTopic === HTTP_SOURCE_TOPIC) ?? null, 300_000))!;
    assert.equal(letter.code, 'UNKNOWN_EVENT_TYPE');

    const known = (await eventually(async () => {
      const body = (await (await fetch(`${server.url}/v1/users/${user}/recommendations?k=5`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { coldStart: boolean };
      return body.coldStart ? null : body;
    }, 300_000))!;
    assert.equal(known.coldStart, false);
  });
});
