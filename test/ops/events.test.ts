import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import type { Interaction } from '../../src/domain/events.ts';
import type { DeadLetterRecord } from '../../src/eventlog/codec/avro.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { HTTP_SOURCE_TOPIC, type EventsResult } from '../../src/ops/api/events.ts';
import { createApi, MAX_EVENTS_PER_REQUEST } from '../../src/ops/api/routes.ts';
import { startOpsServer, type OpsServer } from '../../src/ops/server.ts';
import { eventually, uniqueName } from '../helpers.ts';
import { startTestPipeline, type TestPipeline } from './helpers.ts';

/**
 * `POST /v1/events` on a running embedded pipeline (buildPipeline + the ops server, as `run` and
 * `demo --serve` wire it): accepted events reach the same pipeline and change what the API answers; refused
 * ones are answered per record and dead-lettered like any dead letter.
 */

const TOKEN = 'events-test-token-0123';

interface RecommendationBody {
  userId: string;
  coldStart: boolean;
  items: { itemId: string; sources: string[] }[];
}

async function post(url: string, body: unknown, token: string | null = TOKEN): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${url}/v1/events`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function recommendations(running: TestPipeline, userId: string): Promise<RecommendationBody> {
  const res = await fetch(`${running.server.url}/v1/users/${encodeURIComponent(userId)}/recommendations?k=5`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  return (await res.json()) as RecommendationBody;
}

describe('POST /v1/events on a running embedded pipeline', () => {
  let running: TestPipeline;
  let letters: DeadLetterRecord[];
  let stopReader: () => Promise<void>;
  /** A minute ago: inside the ingest's time range, after every fed event. */
  const atMs = (): number => Date.now() - 60_000;
  const event = (userId: string, itemId: string, i: number): Interaction => ({
    eventId: `${userId}-${i}`,
    userId,
    itemId,
    type: 'click',
    value: null,
    timestampMs: atMs() + i,
    context: {},
  });

  before(async () => {
    running = await startTestPipeline({ ops: { apiToken: TOKEN } });
    await running.feed(300);
    const { log, topics, framing, engine } = running.pipeline;
    letters = [];
    const reader = log.consumer({ groupId: uniqueName('dlq-reader'), topics: [topics.deadLetters], fromBeginning: true, maxBatchRecords: 100 });
    const reading = reader.run(async (batch) => {
      for (const r of batch.records) letters.push(await framing.decode(engine.codecs.deadLetter, r.value, r.headers));
    });
    stopReader = async () => {
      await reader.stop();
      await reading;
    };
  });
  after(async () => {
    await stopReader();
    await running.close();
  });

  test('events for a new user make it known: its recommendations change from the cold-start answer', async () => {
    const user = 'new-user-1';
    const cold = await recommendations(running, user);
    assert.equal(cold.coldStart, true);
    const processed = running.pipeline.runner.processedRecords;
    const res = await post(running.server.url, [event(user, 'i3', 0), event(user, 'i7', 1), event(user, 'i12', 2)]);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual(res.body, { accepted: 3, rejected: 0, errors: [] });
    // Learned in the pipeline's next batch: waits for it (the deadline only guards against a hang).
    await eventually(() => running.pipeline.runner.processedRecords >= processed + 3, 300_000);
    const known = (await eventually(async () => {
      const body = await recommendations(running, user);
      return body.coldStart ? null : body;
    }, 300_000))!;
    assert.equal(known.coldStart, false);
    assert.ok(known.items.length > 0);
    assert.notDeepEqual(
      known.items.map((i) => i.itemId),
      cold.items.map((i) => i.itemId),
      'the list is no longer the popularity answer',
    );
    assert.ok(known.items.some((i) => i.sources.some((s) => s !== 'popular')), 'candidates from what the user did, not popularity alone');
  });

  test('a single event and {"events": [...]} are accepted too', async () => {
    assert.deepEqual((await post(running.server.url, event('new-user-2', 'i1', 0))).body, { accepted: 1, rejected: 0, errors: [] });
    const wrapped = await post(running.server.url, { events: [event('new-user-2', 'i2', 1), event('new-user-2', 'i4', 2)] });
    assert.equal(wrapped.status, 202);
    assert.equal(wrapped.body.accepted, 2);
  });

  test('bad records: answered by index, code and message, dead-lettered on the DLQ topic and counted', async () => {
    const good = event('new-user-3', 'i5', 0);
    const batch = [
      good,
      { ...good, eventId: 'bad-type', type: 'like' },
      { userId: 'new-user-3', itemId: 'i5', type: 'view', timestampMs: atMs() },
      { ...good, eventId: 'future', timestampMs: Date.now() + 86_400_000 },
      { ...good, eventId: 'empty-user', userId: '' },
      { ...good, eventId: 'string-time', timestampMs: '2024-01-01' },
      'not an object',
    ];
    const res = await post(running.server.url, batch);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const body = res.body as unknown as EventsResult;
    assert.equal(body.accepted, 1);
    assert.equal(body.rejected, 6);
    assert.deepEqual(
      body.errors.map((e) => [e.index, e.code]),
      [
        [1, 'UNKNOWN_EVENT_TYPE'],
        [2, 'UNDECODABLE'],
        [3, 'TIMESTAMP_OUT_OF_RANGE'],
        [4, 'MISSING_ID'],
        [5, 'UNDECODABLE'],
        [6, 'UNDECODABLE'],
      ],
    );
    assert.match(body.errors[1]!.message, /eventId must be a string \(missing\)/);
    assert.match(body.errors[4]!.message, /timestampMs must be an integer/);
    for (const e of body.errors) assert.ok(e.message.length > 0);

    const mine = (await eventually(() => {
      const found = letters.filter((l) => l.sourceTopic === HTTP_SOURCE_TOPIC && l.reason !== '' && l.code !== '');
      return found.length >= 6 ? found : null;
    }, 300_000))!;
    const byIndex = new Map(mine.map((l) => [Number(l.sourceOffset.split('#')[1]), l]));
    const typeLetter = byIndex.get(1)!;
    assert.equal(typeLetter.code, 'UNKNOWN_EVENT_TYPE');
    assert.equal(typeLetter.sourcePartition, -1);
    assert.equal(JSON.parse(typeLetter.payload.toString('utf8')).eventId, 'bad-type', 'the record as sent is the payload');
    assert.equal(typeLetter.key?.toString('utf8'), 'new-user-3');
    assert.equal(byIndex.get(6)!.key, null, 'no user id, no key');
    const metrics = await running.registry.metrics();
    assert.match(metrics, /^starstream_dead_letters_total\{code="UNKNOWN_EVENT_TYPE"\} 1$/m);
    assert.match(metrics, /^starstream_dead_letters_total\{code="UNDECODABLE"\} 3$/m);
  });

  test('every record refused: 422 EVENTS_REJECTED with the errors', async () => {
    const res = await post(running.server.url, [{ eventId: 'x', userId: 'u', itemId: 'i1', type: 'nope', timestampMs: atMs() }]);
    assert.equal(res.status, 422);
    assert.equal(res.body.accepted, 0);
    assert.equal(res.body.rejected, 1);
    assert.equal((res.body.error as { code: string }).code, 'EVENTS_REJECTED');
  });

  test('a body that is not events: 400 with a code; no token: 401; GET: 405', async () => {
    const cases: [unknown, string][] = [
      ['{not json', 'INVALID_JSON'],
      ['', 'INVALID_JSON'],
      ['42', 'INVALID_BODY'],
      [{ events: 'x' }, 'INVALID_BODY'],
      [[], 'EMPTY_BATCH'],
      [{ events: [] }, 'EMPTY_BATCH'],
    ];
    for (const [body, code] of cases) {
      const res = await post(running.server.url, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((res.body.error as { code: string }).code, code, JSON.stringify(body));
    }
    const tooMany = await post(running.server.url, Array.from({ length: MAX_EVENTS_PER_REQUEST + 1 }, () => ({})));
    assert.equal(tooMany.status, 413);
    assert.equal((tooMany.body.error as { code: string }).code, 'TOO_MANY_EVENTS');
    assert.equal((await post(running.server.url, event('u', 'i1', 0), null)).status, 401);
    const get = await fetch(`${running.server.url}/v1/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    await get.body?.cancel();
  });
});

describe('POST /v1/events without ops.apiToken', () => {
  let running: TestPipeline;
  before(async () => {
    running = await startTestPipeline();
  });
  after(() => running.close());

  test('is refused like the admin routes: 403 ADMIN_DISABLED', async () => {
    const res = await post(running.server.url, { eventId: 'e', userId: 'u', itemId: 'i1', type: 'view', timestampMs: Date.now() }, null);
    assert.equal(res.status, 403);
    assert.equal((res.body.error as { code: string }).code, 'ADMIN_DISABLED');
  });
});

describe('POST /v1/events body bound', () => {
  let server: OpsServer;
  const seen: number[] = [];
  before(async () => {
    server = await startOpsServer({ host: '127.0.0.1', port: 0, registry: new Registry(), readiness: async () => ({ ready: true, checks: {} }) });
    server.route(
      '/v1/',
      createApi({
        recommend: () => Promise.reject(new Error('not used')),
        defaultK: 10,
        maxK: 100,
        token: TOKEN,
        reloadModel: null,
        pause: () => {},
        resume: () => {},
        isPaused: () => false,
        ingestEvents: async (records) => {
          seen.push(records.length);
          return { accepted: records.length, rejected: 0, errors: [] };
        },
        maxBodyBytes: 200,
        logger: silentLogger(),
      }),
    );
  });
  after(() => server.close());

  test('a body over maxBodyBytes is a 413 and never reaches ingest; one within it does', async () => {
    const small = await post(server.url, [{ a: 1 }]);
    assert.equal(small.status, 202);
    const large = await post(server.url, [{ pad: 'x'.repeat(300) }]);
    assert.equal(large.status, 413);
    assert.equal((large.body.error as { code: string }).code, 'PAYLOAD_TOO_LARGE');
    assert.deepEqual(seen, [1]);
  });
});
