/**
 * Issue 16, "checkpoints that hold state and offsets together", on the real broker: a `starstream run` child
 * with the embedded store and a snapshot path checkpoints as it goes, is SIGKILLed at a seeded point (after its
 * group has committed past at least one checkpoint), and a second child resumes from the checkpoint's positions
 * rather than the group's committed offsets. After a SIGTERM the final checkpoint holds the state of a clean
 * run over the same events: counts, histories, consumed filters, audiences, co-occurrence and popularity
 * exactly. (Vectors need deterministic learning; see test/pipeline/checkpoint-restart.test.ts.) A second case
 * kills the child before its first periodic checkpoint: the restart resumes from the first checkpoint, which
 * the runner wrote (empty state, the group's start positions) before consuming anything.
 *
 * One interactions partition, every event produced before the first child starts: each run learns them in
 * the same order. CHECKPOINT_KILL_EVENTS (default 6000) events; CHECKPOINT_KILL_SEED picks the kill point.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { produceInteractions } from '../../../src/cli/produce.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { createRng } from '../../../src/data/random.ts';
import { generateStream } from '../../../src/data/synthetic.ts';
import type { Interaction } from '../../../src/domain/events.ts';
import { createEmbeddedEventLog } from '../../../src/eventlog/embedded/log.ts';
import { silentLogger } from '../../../src/logging/logger.ts';
import { buildPipeline } from '../../../src/main.ts';
import { EmbeddedStore } from '../../../src/store/embedded/index.ts';
import type { ItemProfile, UserProfile, VectorStore } from '../../../src/store/port.ts';
import { eventually, uniqueName } from '../../helpers.ts';
import { checkpointPosition } from '../../store/checkpoint-file.ts';
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

after(() => stopOwnBroker());

const EVENTS = Number(process.env.CHECKPOINT_KILL_EVENTS ?? 6_000);
const SEED = process.env.CHECKPOINT_KILL_SEED ?? 'checkpoint-kill';
const MAX_BATCH = 100;
const events: Interaction[] = [...generateStream({ events: EVENTS, users: 300, items: 400, seed: 33 })];
const userIds = [...new Set(events.map((e) => e.userId))];
const itemIds = [...new Set(events.map((e) => e.itemId))];
const dir = mkdtempSync(join(tmpdir(), 'starstream-checkpoint-kill-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The settings both children and the clean run share (as STARSTREAM_* variables). */
const STORE_ENV = {
  STARSTREAM_STORE__DIMENSION: '8',
  STARSTREAM_STORE__EMBEDDED__INDEX_BUILD: 'inline',
  STARSTREAM_STORE__EMBEDDED__CHECKPOINT_INTERVAL_MS: '0',
  STARSTREAM_STORE__EMBEDDED__CHECKPOINT_EVERY_BATCHES: '5',
};

interface State {
  readonly counts: { users: number; items: number };
  readonly users: Map<string, UserProfile>;
  readonly items: Map<string, ItemProfile>;
}

async function stateOf(store: VectorStore): Promise<State> {
  return { counts: await store.counts(), users: await store.getUsers(userIds), items: await store.getItems(itemIds) };
}

/** The same events through an in-process pipeline on the embedded log, to the end. */
async function cleanRun(): Promise<State> {
  const config = loadConfig({ env: { ...STORE_ENV, STARSTREAM_EVENT_LOG__TOPICS__PARTITIONS: '1', STARSTREAM_PIPELINE__MAX_BATCH_RECORDS: String(MAX_BATCH), STARSTREAM_PIPELINE__GROUP_ID: uniqueName('clean') } });
  const logger = silentLogger();
  const log = createEmbeddedEventLog(config.eventLog, logger);
  const pipeline = await buildPipeline(config, { logger, log });
  try {
    await produceInteractions(log, pipeline.topics.interactions, events, pipeline.engine.codecs, pipeline.framing, { garbageEvery: 0, nonFiniteEvery: 0 });
    await pipeline.runner.start();
    await eventually(() => pipeline.runner.processedRecords >= EVENTS, 300_000);
    await pipeline.runner.stop();
    return await stateOf(pipeline.engine.store);
  } finally {
    await pipeline.runner.stop();
    await pipeline.scorers.close();
    await pipeline.engine.store.close();
    await log.close();
  }
}


let clean: Promise<State> | null = null;

/**
 * One child killed at `killAfter` committed records (and a checkpoint on disk: a periodic one when `periodic`),
 * a second one run to the end and stopped, and its final checkpoint compared with a clean run. Returns where
 * the second child resumed.
 */
async function killAndRestart(
  t: TestContext,
  name: string,
  killAfter: number,
  extra: Readonly<Record<string, string>>,
  periodic: boolean,
): Promise<number> {
  const path = join(dir, `${name}.snapshot`);
  const env = pipelineEnv({
    brokers: await brokers(),
    partitions: 1,
    maxBatchRecords: MAX_BATCH,
    extra: { ...STORE_ENV, ...extra, STARSTREAM_STORE__EMBEDDED__PATH: path },
  });
  const setup = await createTestTopics(t, env);
  const log = testEventLog(t, setup);
  const producer = log.producer();
  onCleanup(t, () => producer.close());
  const records = [...encodeInteractions(setup, events)];
  for (let k = 0; k < records.length; k += 1_000) await producer.send(records.slice(k, k + 1_000));
  const groupId = setup.config.pipeline.groupId;
  const topic = setup.topics.interactions;
  const committed = async (): Promise<number> => Number((await committedOffsets(setup.brokerList, groupId, topic)).get(0) ?? -1n);

  const first = spawnPipeline(t, 'first', env);
  // The first checkpoint (at the start) is on disk before anything is consumed; `periodic` waits for a later one.
  const onDisk = (): boolean => (checkpointPosition(path, topic) ?? -1) >= (periodic ? 1 : 0);
  await waitUntil(async () => (await committed()) >= killAfter && onDisk(), {
    timeoutMs: 300_000,
    intervalMs: 20,
    failed: anyExited(first),
    what: `commits past ${killAfter} and a checkpoint`,
  });
  first.signal('SIGKILL');
  await first.exited;
  const resumeAt = checkpointPosition(path, topic)!;
  const committedAtKill = await committed();
  process.stderr.write(`# killed after commit ${committedAtKill}; the checkpoint on disk resumes at ${resumeAt}\n`);
  assert.ok(resumeAt <= committedAtKill, 'a checkpoint never covers more than was handled');
  assert.ok(committedAtKill >= killAfter);

  const second = spawnPipeline(t, 'second', env);
  await waitUntil(async () => (await committed()) >= EVENTS, { timeoutMs: 300_000, failed: anyExited(second), what: 'every event committed' });
  const { status } = await stopGracefully(second, 140_000);
  assert.deepEqual(status, { code: 0, signal: null }, second.output());
  assert.equal(checkpointPosition(path, topic), EVENTS, 'the final checkpoint holds every event');

  const config = loadConfig({ env: { ...STORE_ENV, STARSTREAM_STORE__EMBEDDED__PATH: path } });
  const restored = new EmbeddedStore({ ...config.store, ...config.store.embedded, path });
  await restored.init();
  const got = await stateOf(restored);
  restored.handOverSnapshots();
  await restored.close();
  clean ??= cleanRun();
  const want = await clean;

  assert.deepEqual(got.counts, want.counts);
  for (const [id, expected] of want.users) {
    const { vector: _v, ...rest } = got.users.get(id)!;
    const { vector: _w, ...wanted } = expected;
    assert.deepEqual(rest, wanted, `user ${id}`);
  }
  for (const [id, expected] of want.items) {
    const { vector: _v, lastSeenMs: _l, ...rest } = got.items.get(id)!;
    const { vector: _w, lastSeenMs: _m, ...wanted } = expected;
    assert.deepEqual(rest, wanted, `item ${id}`);
  }
  return resumeAt;
}

describe('embedded checkpoints on Kafka: SIGKILL and restart', { timeout: 900_000 }, () => {
  it('a child killed at a seeded point and restarted ends in the state of a clean run', async (t) => {
    // The kill point: committed offsets past a seeded offset in the first half, and a checkpoint on disk.
    // Two batches past a checkpoint (every 5 batches), so the group has committed beyond the checkpoint on disk.
    const killAfter = MAX_BATCH * (5 * (1 + createRng(SEED).int(EVENTS / MAX_BATCH / 10)) + 2);
    const resumeAt = await killAndRestart(t, 'periodic', killAfter, {}, true);
    assert.ok(resumeAt > 0, 'resumed from a periodic checkpoint');
  });

  it('a child killed before its first periodic checkpoint restarts from the first one, written before it consumed', async (t) => {
    // No periodic checkpoint in the run: on disk at the kill is only the first one, taken before consuming.
    const killAfter = MAX_BATCH * (3 + createRng(`${SEED}/first`).int(EVENTS / MAX_BATCH / 2));
    const resumeAt = await killAndRestart(t, 'first', killAfter, { STARSTREAM_STORE__EMBEDDED__CHECKPOINT_EVERY_BATCHES: '1000000' }, false);
    assert.equal(resumeAt, 0, 'resumed from the first checkpoint, at the start of the topic');
  });
});
