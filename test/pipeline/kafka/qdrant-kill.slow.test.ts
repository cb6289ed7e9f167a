/**
 * Issue 16's SIGKILL matrix on a store written per batch: `starstream run` children on the real broker with
 * `store.kind=qdrant` (a real Qdrant server), killed with SIGKILL at QDRANT_KILL_POINTS (default 10) seeded
 * points of one stream, each time restarted, the last child run to the end and stopped. For `direct` and for
 * `routed` item writes, after the ten deaths:
 *
 * - every input offset is answered (a recommendation or a dead letter): 0 unaccounted for;
 * - what Qdrant holds equals a clean run's over the same events (an in-process pipeline on the embedded log
 *   writing collections of its own): every user's counts, history, consumed filter and first/last seen, every
 *   item's counts, audience, co-occurrence and popularity. An event learned twice, or one whose changes were
 *   lost, moves a count. Vectors are left out (the negative sampler's ring does not outlive a process), and so
 *   are the source positions (topic names differ between the runs) and an item's last-seen time (a negative
 *   sighting moves it).
 *
 * One interactions partition, every event produced before the first child starts, so each run learns the
 * events in the same order; co-occurrence lists long enough never to be cut (a cut's place depends on batch
 * boundaries, which the kills move). QDRANT_KILL_EVENTS (default 12,000) events; QDRANT_KILL_SEED picks the points.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import * as kafkajs from 'kafkajs';
import { NO_MALFORMED, produceInteractions } from '../../../src/cli/produce.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { createRng } from '../../../src/data/random.ts';
import { generateStream } from '../../../src/data/synthetic.ts';
import type { Interaction } from '../../../src/domain/events.ts';
import { createEmbeddedEventLog } from '../../../src/eventlog/embedded/log.ts';
import { silentLogger } from '../../../src/logging/logger.ts';
import { buildPipeline } from '../../../src/main.ts';
import { createQdrantStore } from '../../../src/store/qdrant/index.ts';
import { eventually, uniqueName } from '../../helpers.ts';
import { qdrantForTests, type QdrantServer } from '../../store/qdrant-server.ts';
import { collectionPrefix, comparable, dropCollections } from '../../store/tiered-world.ts';
import { startCollector, describeAccounting } from './accounting.ts';
import {
  anyExited,
  brokers,
  committedOffsets,
  createTestTopics,
  encodeInteractions,
  onCleanup,
  pipelineEnv,
  spawnPipeline,
  stopGracefully,
  stopOwnBroker,
  testEventLog,
  waitUntil,
} from './harness.ts';

const target = await qdrantForTests();
const skip = 'skip' in target ? target.skip : false;
const server = 'skip' in target ? null : target;
after(() => stopOwnBroker());

const EVENTS = Number(process.env.QDRANT_KILL_EVENTS ?? 12_000);
const KILLS = Number(process.env.QDRANT_KILL_POINTS ?? 10);
const SEED = process.env.QDRANT_KILL_SEED ?? 'qdrant-kill';
const MAX_BATCH = 100;
const events: Interaction[] = [...generateStream({ events: EVENTS, users: 300, items: 400, seed: 35 })];
const userIds = [...new Set(events.map((e) => e.userId))];
const itemIds = [...new Set(events.map((e) => e.itemId))];
type Mode = 'direct' | 'routed';

/** The store settings of the children and of the clean run (collections of their own). */
function storeEnv(t: QdrantServer, mode: Mode, prefix: string): Record<string, string> {
  return {
    STARSTREAM_STORE__KIND: 'qdrant',
    STARSTREAM_STORE__DIMENSION: '8',
    STARSTREAM_STORE__ITEM_WRITES: mode,
    // Above the catalogue size: no co-occurrence list is ever cut. The cut keeps the largest counts of the
    // deltas folded in one write, so where it falls depends on the batch boundaries, which the kills move.
    STARSTREAM_STORE__COOCCURRENCE_LIMIT: '1000',
    STARSTREAM_STORE__QDRANT__URL: t.url,
    STARSTREAM_STORE__QDRANT__COLLECTION_PREFIX: prefix,
    ...(t.apiKey ? { STARSTREAM_STORE__QDRANT__API_KEY: t.apiKey } : {}),
  };
}

/** What a fresh adapter reads from the collections under `prefix`: comparable, vectors and positions left out. */
async function stateIn(t: QdrantServer, mode: Mode, prefix: string) {
  const config = loadConfig({ env: storeEnv(t, mode, prefix) });
  const store = createQdrantStore({ config: config.store });
  await store.init();
  try {
    const users = await store.getUsers(userIds);
    const items = await store.getItems(itemIds);
    return {
      users: new Map([...users].map(([id, { vector: _v, learned: _l, ...rest }]) => [id, rest])),
      items: new Map([...items].map(([id, { learned: _l, lastSeenMs: _s, ...item }]) => [id, comparable({ ...item, lastSeenMs: 0 }, { vector: false })])),
    };
  } finally {
    await store.close();
  }
}

/** The same events through an in-process pipeline on the embedded log, to the end (item writes applied too). */
async function cleanRun(t: TestContext, mode: Mode) {
  const prefix = collectionPrefix(`clean_${mode}`);
  t.after(() => dropCollections(server!, prefix));
  const config = loadConfig({
    env: {
      ...storeEnv(server!, mode, prefix),
      STARSTREAM_EVENT_LOG__TOPICS__PARTITIONS: '1',
      STARSTREAM_PIPELINE__MAX_BATCH_RECORDS: String(MAX_BATCH),
      STARSTREAM_PIPELINE__GROUP_ID: uniqueName('clean'),
    },
  });
  const logger = silentLogger();
  const log = createEmbeddedEventLog(config.eventLog, logger);
  const pipeline = await buildPipeline(config, { logger, log });
  try {
    await produceInteractions(log, pipeline.topics.interactions, events, pipeline.engine.codecs, pipeline.framing, NO_MALFORMED);
    await pipeline.runner.start();
    await eventually(() => pipeline.runner.processedRecords >= EVENTS, 600_000, 100);
    await eventually(async () => (await pipeline.runner.itemDeltaLag()) === 0, 120_000, 100);
  } finally {
    await pipeline.runner.stop();
    await pipeline.scorers.close();
    await pipeline.engine.store.close();
    await log.close();
  }
  return stateIn(server!, mode, prefix);
}

/** Item-deltas records the writer's group has not committed (0 once every item change is in Qdrant). */
async function itemDeltaBacklog(brokerList: string[], groupId: string, topic: string): Promise<number> {
  const admin = new kafkajs.Kafka({ brokers: brokerList, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    const committed = await committedOffsets(brokerList, groupId, topic);
    let backlog = 0n;
    for (const p of ends) {
      const done = committed.get(p.partition) ?? 0n;
      backlog += BigInt(p.high) - (done < 0n ? 0n : done);
    }
    return Number(backlog);
  } finally {
    await admin.disconnect();
  }
}

const WAIT = { timeoutMs: 600_000, intervalMs: 50 } as const;

async function killMatrix(t: TestContext, mode: Mode): Promise<void> {
  const prefix = collectionPrefix(`kill_${mode}`);
  t.after(() => dropCollections(server!, prefix));
  const env = pipelineEnv({ brokers: await brokers(), partitions: 1, maxBatchRecords: MAX_BATCH, extra: storeEnv(server!, mode, prefix) });
  const setup = await createTestTopics(t, env);
  const collector = await startCollector(t, { brokers: setup.brokerList, topics: setup.topics, codecs: setup.codecs, framing: setup.framing });
  const log = testEventLog(t, setup);
  const producer = log.producer();
  onCleanup(t, () => producer.close());
  const records = [...encodeInteractions(setup, events)];
  for (let k = 0; k < records.length; k += 1_000) await producer.send(records.slice(k, k + 1_000));
  const groupId = setup.config.pipeline.groupId;
  const committed = async (): Promise<number> => Number((await committedOffsets(setup.brokerList, groupId, setup.topics.interactions)).get(0) ?? -1n);

  // Ten seeded points, distinct batches of the stream, in order: each child is killed once its group has
  // committed past its point (a batch or more may be written to Qdrant and not committed: the window tested).
  const rng = createRng(`${SEED}/${mode}`);
  const chosen = new Set<number>();
  while (chosen.size < KILLS) chosen.add(MAX_BATCH * (1 + rng.int(EVENTS / MAX_BATCH - 2)));
  const points = [...chosen].sort((a, b) => a - b);
  for (const [k, point] of points.entries()) {
    const child = spawnPipeline(t, `${mode}-${k}`, env);
    await waitUntil(async () => (await committed()) >= point, { ...WAIT, failed: anyExited(child), what: `${mode} child ${k}: commits past ${point}` });
    child.signal('SIGKILL');
    await child.exited;
    process.stderr.write(`# ${mode}: child ${k} killed after commit ${await committed()} (point ${point})\n`);
  }
  const last = spawnPipeline(t, `${mode}-last`, env);
  await waitUntil(async () => (await committed()) >= EVENTS, { ...WAIT, failed: anyExited(last), what: `${mode}: every event committed` });
  if (mode === 'routed') {
    await waitUntil(async () => (await itemDeltaBacklog(setup.brokerList, `${groupId}.item-deltas`, setup.topics.itemDeltas)) === 0, {
      ...WAIT,
      failed: anyExited(last),
      what: 'every item-deltas record applied',
    });
  }
  const { status } = await stopGracefully(last, 140_000);
  assert.deepEqual(status, { code: 0, signal: null }, last.output());

  const accounting = await collector.waitForAccounting(EVENTS, { timeoutMs: 120_000 });
  t.diagnostic(`${mode}: ${points.length} kills; ${describeAccounting(accounting)}`);
  assert.equal(accounting.inputs, EVENTS);
  assert.equal(accounting.missing.length, 0, describeAccounting(accounting));

  const got = await stateIn(server!, mode, prefix);
  const want = await cleanRun(t, mode);
  assert.equal(got.users.size, want.users.size);
  for (const [id, expected] of want.users) assert.deepEqual(got.users.get(id), expected, `${mode}: user ${id}`);
  assert.equal(got.items.size, want.items.size);
  for (const [id, expected] of want.items) assert.deepEqual(got.items.get(id), expected, `${mode}: item ${id}`);
}

describe(`Qdrant store on Kafka: SIGKILL at ${KILLS} seeded points`, { skip, timeout: 1_800_000 }, () => {
  it('direct item writes: every input answered, Qdrant equal to a clean run\'s', (t) => killMatrix(t, 'direct'));
  it('routed item writes: every input answered, Qdrant equal to a clean run\'s', (t) => killMatrix(t, 'routed'));
});
