/**
 * Issue 16's SIGKILL matrix: `starstream run` children on the real broker, killed with SIGKILL at
 * KILL_MATRIX_POINTS (default 10) seeded points of one stream, each time restarted, the last child run to the
 * end and stopped. For the embedded store with a snapshot path (checkpoints with offsets) and for a store
 * written per batch (`store.kind=qdrant` on a real Qdrant server, `direct` and `routed` item writes), after
 * the ten deaths:
 *
 * - every input offset is answered (a recommendation or a dead letter): 0 unaccounted for;
 * - the final state equals a clean run's over the same events (an in-process pipeline on the embedded log):
 *   every user's counts, history, consumed filter and first/last seen, every item's counts, audience,
 *   co-occurrence and popularity. An event learned twice, or one whose changes were lost, moves a count. The
 *   embedded store's vectors are compared too (within float tolerance: learning is seeded per event and the
 *   checkpoint carries the negative sampler's ring); Qdrant's are left out (the ring does not outlive a
 *   process), and so are the source positions (topic names differ between the runs) and an item's last-seen
 *   time (a negative sighting moves it).
 *
 * One interactions partition, every event produced before the first child starts, so each run learns the
 * events in the same order; co-occurrence lists short enough (20, of 400 items) to be cut all the time, so a
 * cut that fell by batch boundaries, which the kills move, would show. KILL_MATRIX_EVENTS (default 12,000)
 * events; KILL_MATRIX_SEED picks the points.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { EmbeddedStore } from '../../../src/store/embedded/index.ts';
import type { ItemProfile, UserProfile, VectorStore } from '../../../src/store/port.ts';
import { createQdrantStore } from '../../../src/store/qdrant/index.ts';
import { eventually, uniqueName } from '../../helpers.ts';
import { qdrantForTests } from '../../store/qdrant-server.ts';
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

const EVENTS = Number(process.env.KILL_MATRIX_EVENTS ?? 12_000);
const KILLS = Number(process.env.KILL_MATRIX_POINTS ?? 10);
// The seed of the figures in RELIABILITY.md (the file was the Qdrant-only matrix first).
const SEED = process.env.KILL_MATRIX_SEED ?? 'qdrant-kill';
const dir = mkdtempSync(join(tmpdir(), 'starstream-kill-matrix-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const MAX_BATCH = 100;
const events: Interaction[] = [...generateStream({ events: EVENTS, users: 300, items: 400, seed: 35 })];
const userIds = [...new Set(events.map((e) => e.userId))];
const itemIds = [...new Set(events.map((e) => e.itemId))];
type Mode = 'embedded' | 'direct' | 'routed';

/**
 * The store settings of the children and of the clean run: `where` is a Qdrant collection prefix, or the
 * embedded store's snapshot path (none for the clean run).
 */
function storeEnv(mode: Mode, where: string | undefined): Record<string, string> {
  const common = {
    STARSTREAM_STORE__DIMENSION: '8',
    // Far below the catalogue (400 items): lists are cut all the time, and the cut must fall where a run that
    // never crashed cuts them, whatever batch boundaries the kills move (the routed writer never sums
    // co-occurrence counts across deltas, `mergeItemDeltas`).
    STARSTREAM_STORE__COOCCURRENCE_LIMIT: '20',
  };
  if (mode === 'embedded') {
    return {
      ...common,
      STARSTREAM_STORE__EMBEDDED__INDEX_BUILD: 'inline',
      STARSTREAM_STORE__EMBEDDED__CHECKPOINT_INTERVAL_MS: '0',
      STARSTREAM_STORE__EMBEDDED__CHECKPOINT_EVERY_BATCHES: '5',
      ...(where ? { STARSTREAM_STORE__EMBEDDED__PATH: where } : {}),
    };
  }
  return {
    ...common,
    STARSTREAM_STORE__KIND: 'qdrant',
    STARSTREAM_STORE__ITEM_WRITES: mode,
    STARSTREAM_STORE__QDRANT__URL: server!.url,
    STARSTREAM_STORE__QDRANT__COLLECTION_PREFIX: where!,
    ...(server!.apiKey ? { STARSTREAM_STORE__QDRANT__API_KEY: server!.apiKey } : {}),
  };
}

/** Users and items as compared exactly (positions and an item's last-seen time out), and their vectors apart. */
function comparableState(users: Map<string, UserProfile>, items: Map<string, ItemProfile>) {
  return {
    users: new Map([...users].map(([id, { vector: _v, learned: _l, ...rest }]) => [id, rest])),
    items: new Map([...items].map(([id, { learned: _l, lastSeenMs: _s, ...item }]) => [id, comparable({ ...item, lastSeenMs: 0 }, { vector: false })])),
    vectors: new Map<string, Float32Array>([...[...users].map(([id, u]) => [`user ${id}`, u.vector] as const), ...[...items].map(([id, i]) => [`item ${id}`, i.vector] as const)]),
  };
}

function assertClose(got: Float32Array | undefined, want: Float32Array, what: string): void {
  assert.ok(got && got.length === want.length, what);
  for (let k = 0; k < want.length; k++) assert.ok(Math.abs(got[k]! - want[k]!) <= 1e-5 * Math.max(1, Math.abs(want[k]!)), `${what}[${k}]: ${got[k]} vs ${want[k]}`);
}

/** What a fresh store reads where `where` says (the embedded store restored from its final checkpoint). */
async function stateIn(mode: Mode, where: string) {
  const config = loadConfig({ env: storeEnv(mode, where) });
  const store: VectorStore =
    mode === 'embedded' ? new EmbeddedStore({ ...config.store, ...config.store.embedded, path: where }) : createQdrantStore({ config: config.store });
  await store.init();
  try {
    return comparableState(await store.getUsers(userIds), await store.getItems(itemIds));
  } finally {
    if (store instanceof EmbeddedStore) store.handOverSnapshots();
    await store.close();
  }
}

/** The same events through an in-process pipeline on the embedded log, to the end (item writes applied too). */
async function cleanRun(t: TestContext, mode: Mode) {
  const prefix = mode === 'embedded' ? undefined : collectionPrefix(`clean_${mode}`);
  if (prefix) t.after(() => dropCollections(server!, prefix));
  const config = loadConfig({
    env: {
      ...storeEnv(mode, prefix),
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
    await pipeline.runner.stop();
    const store = pipeline.engine.store;
    return comparableState(await store.getUsers(userIds), await store.getItems(itemIds));
  } finally {
    // Stopping again is a no-op after a clean run; it matters when a wait above failed.
    await pipeline.runner.stop();
    await pipeline.scorers.close();
    await pipeline.engine.store.close();
    await log.close();
  }
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
  const where = mode === 'embedded' ? join(dir, 'killed.snapshot') : collectionPrefix(`kill_${mode}`);
  if (mode !== 'embedded') t.after(() => dropCollections(server!, where));
  const env = pipelineEnv({ brokers: await brokers(), partitions: 1, maxBatchRecords: MAX_BATCH, extra: storeEnv(mode, where) });
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

  const got = await stateIn(mode, where);
  const want = await cleanRun(t, mode);
  assert.equal(got.users.size, want.users.size);
  for (const [id, expected] of want.users) assert.deepEqual(got.users.get(id), expected, `${mode}: user ${id}`);
  assert.equal(got.items.size, want.items.size);
  for (const [id, expected] of want.items) assert.deepEqual(got.items.get(id), expected, `${mode}: item ${id}`);
  // Learning is seeded per event, and the embedded checkpoint carries the negative sampler's ring.
  if (mode === 'embedded') for (const [what, expected] of want.vectors) assertClose(got.vectors.get(what), expected, `${mode}: ${what}`);
}

describe(`SIGKILL at ${KILLS} seeded points on Kafka`, { timeout: 1_800_000 }, () => {
  it('embedded store with a snapshot path: every input answered, the final checkpoint equal to a clean run\'s', (t) => killMatrix(t, 'embedded'));
  it('Qdrant, direct item writes: every input answered, Qdrant equal to a clean run\'s', { skip }, (t) => killMatrix(t, 'direct'));
  it('Qdrant, routed item writes: every input answered, Qdrant equal to a clean run\'s', { skip }, (t) => killMatrix(t, 'routed'));
});
