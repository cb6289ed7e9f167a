import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { produceInteractions } from '../../src/cli/produce.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { generateStream } from '../../src/data/synthetic.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { createEmbeddedEventLog } from '../../src/eventlog/embedded/log.ts';
import type { EventLog } from '../../src/eventlog/port.ts';
import { createLogger, silentLogger } from '../../src/logging/logger.ts';
import { buildPipeline, type Pipeline } from '../../src/main.ts';
import { checkpointMeta } from '../../src/store/embedded/checkpoint.ts';
import { decodeSnapshot } from '../../src/store/embedded/state/snapshot.ts';
import type { ItemProfile, UserProfile } from '../../src/store/port.ts';
import { closePipeline, runUntil, uniqueName } from '../helpers.ts';
import { checkpointPastStart, checkpointPosition } from '../store/checkpoint-file.ts';

/**
 * Issue 16, "checkpoints that hold state and offsets together", on the embedded log: a pipeline checkpoints
 * mid-run and goes on committing past it; a restart from that checkpoint resumes at its positions (behind the
 * group's committed offsets) and ends in the state of a clean run. One interactions partition, all events
 * produced before the start, so every run learns them in the same order.
 */

const N = 3_000;
const events: Interaction[] = [...generateStream({ events: N, users: 100, items: 150, seed: 21 })];
const userIds = [...new Set(events.map((e) => e.userId))];
const itemIds = [...new Set(events.map((e) => e.itemId))];
const dir = mkdtempSync(join(tmpdir(), 'starstream-checkpoint-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const logger = process.env.DEBUG_CHECKPOINT ? createLogger("info") : silentLogger();

function config(path: string | undefined, groupId: string, checkpointEveryBatches = 7): Config {
  return loadConfig({
    overrides: {
      store: { dimension: 8, embedded: { path, checkpointIntervalMs: 0, checkpointEveryBatches, indexBuild: 'inline' } },
      ranking: { topK: 5 },
      candidates: { fromEmbedding: 10, fromCooccurrence: 10, fromPopular: 10, maxCandidates: 30 },
      evidence: { neighbours: 5 },
      pipeline: { groupId, maxBatchRecords: 100 },
      eventLog: { topics: { partitions: 1 } },
    },
  });
}

interface FinalState {
  readonly counts: { users: number; items: number };
  readonly users: Map<string, UserProfile>;
  readonly items: Map<string, ItemProfile>;
}

async function finalState(pipeline: Pipeline): Promise<FinalState> {
  const store = pipeline.engine.store;
  return { counts: await store.counts(), users: await store.getUsers(userIds), items: await store.getItems(itemIds) };
}

/** Starts a pipeline and waits until it has processed `expected` records, and not one more. */
async function runExactly(pipeline: Pipeline, expected: number): Promise<void> {
  await runUntil(pipeline, expected);
  assert.equal(pipeline.runner.processedRecords, expected);
}

async function produce(log: EventLog, pipeline: Pipeline, slice: readonly Interaction[]): Promise<void> {
  const { topics, engine, framing } = pipeline;
  await produceInteractions(log, topics.interactions, slice, engine.codecs, framing, { garbageEvery: 0, nonFiniteEvery: 0 });
}

/** The state after every event, learned by one pipeline without a snapshot path (computed once). */
let cleanRun: Promise<FinalState> | null = null;
function cleanState(): Promise<FinalState> {
  cleanRun ??= (async () => {
    const cleanLog = createEmbeddedEventLog(config(undefined, 'x').eventLog, logger);
    const a = await buildPipeline(config(undefined, uniqueName('clean')), { logger, log: cleanLog });
    await produce(cleanLog, a, events);
    await runExactly(a, N);
    const state = await finalState(a);
    await closePipeline(a);
    await cleanLog.close();
    return state;
  })();
  return cleanRun;
}

describe('embedded checkpoints: a restart from a mid-run checkpoint ends in the state of a clean run', () => {
  let clean: FinalState;
  let restarted: FinalState;

  it('runs clean, then checkpoints mid-run and restarts from there, resuming at its positions', async () => {
    clean = await cleanState();

    const path = join(dir, 'state.snapshot');
    const groupId = uniqueName('checkpointed');
    const log = createEmbeddedEventLog(config(path, groupId).eventLog, logger);
    const first = await buildPipeline(config(path, groupId), { logger, log });
    // A group that never commits keeps the records on the embedded log after the pipeline's group commits them.
    log.consumer({ groupId: uniqueName('holder'), topics: [first.topics.interactions], fromBeginning: true, maxBatchRecords: 1 });
    // The crash point: a checkpoint written while half the stream is in (a copy; the run overwrites the file).
    const half = 1_400;
    await produce(log, first, events.slice(0, half));
    await runExactly(first, half);
    // The first checkpoint (at 0) is written before anything is consumed; wait for a periodic one past it.
    const saved = await checkpointPastStart(path, first.topics.interactions);
    await produce(log, first, events.slice(half));
    await runExactly(first, N);
    await closePipeline(first);
    const position = checkpointPosition(path, first.topics.interactions, saved)!;
    assert.ok(position > 0 && position <= half && position % 100 === 0, `mid-run checkpoint at ${position}, after a batch of 100`);
    // The group committed all N; the state on disk is the checkpoint's.
    writeFileSync(path, saved);

    const second = await buildPipeline(config(path, groupId), { logger, log });
    await runExactly(second, N - position);
    restarted = await finalState(second);
    await closePipeline(second);
    await log.close();
  });

  it('counts, histories, consumed filters, audiences, co-occurrence and popularity equal the clean run exactly', () => {
    assert.deepEqual(restarted.counts, clean.counts);
    assert.equal(restarted.users.size, clean.users.size);
    for (const [id, want] of clean.users) {
      const { vector: _v, ...got } = restarted.users.get(id)!;
      const { vector: _w, ...expected } = want;
      assert.deepEqual(got, expected, `user ${id}`);
    }
    assert.equal(restarted.items.size, clean.items.size);
    for (const [id, want] of clean.items) {
      // lastSeenMs moves when an item is drawn as a negative: it goes with the vectors (below).
      const { vector: _v, lastSeenMs: _l, ...got } = restarted.items.get(id)!;
      const { vector: _w, lastSeenMs: _m, ...expected } = want;
      assert.deepEqual(got, expected, `item ${id}`);
    }
  });

  it(
    'vectors (within float tolerance) and negative sightings equal the clean run: init vectors and negatives are seeded per entity and per event',
    () => {
      for (const [id, want] of clean.users) assertClose(restarted.users.get(id)!.vector, want.vector, `user ${id}`);
      for (const [id, want] of clean.items) {
        assertClose(restarted.items.get(id)!.vector, want.vector, `item ${id}`);
        assert.equal(restarted.items.get(id)!.lastSeenMs, want.lastSeenMs, `item ${id} last seen`);
      }
    },
  );
});

describe('embedded checkpoints: a crash before the first periodic checkpoint restarts from the first one', () => {
  it('the first checkpoint is written before anything is consumed, at the start positions; a restart from it ends in the clean state', async () => {
    const clean = await cleanState();
    const path = join(dir, 'first.snapshot');
    const groupId = uniqueName('first-checkpoint');
    // No periodic checkpoint within the run: only the first one (and the last, at shutdown, undone below).
    const rare = 1_000;
    const log = createEmbeddedEventLog(config(path, groupId, rare).eventLog, logger);
    const first = await buildPipeline(config(path, groupId, rare), { logger, log });
    log.consumer({ groupId: uniqueName('holder'), topics: [first.topics.interactions], fromBeginning: true, maxBatchRecords: 1 });
    const half = 1_400;
    await produce(log, first, events.slice(0, half));
    assert.equal(existsSync(path), false);
    await first.runner.start();
    // Written and synced before start() resolved, before the first batch.
    assert.equal(existsSync(path), true, 'the first checkpoint is on disk once the runner has started');
    await runExactly(first, half);
    // The crash point: the group has committed `half` records, and the file is still the first checkpoint.
    const saved = readFileSync(path);
    const meta = checkpointMeta(decodeSnapshot(saved, path).header.meta)!;
    assert.deepEqual(meta.positions[first.topics.interactions], { 0: '0' }, 'the first checkpoint is at the start of the topic');
    assert.deepEqual(meta.positions[first.topics.items], { 0: '0' });
    await produce(log, first, events.slice(half));
    await runExactly(first, N);
    await closePipeline(first);
    writeFileSync(path, saved);

    const second = await buildPipeline(config(path, groupId, rare), { logger, log });
    await runExactly(second, N);
    const restarted = await finalState(second);
    await closePipeline(second);
    await log.close();

    assert.deepEqual(restarted.counts, clean.counts);
    for (const [id, want] of clean.users) {
      const { vector: _v, ...got } = restarted.users.get(id)!;
      const { vector: _w, ...expected } = want;
      assert.deepEqual(got, expected, `user ${id}`);
      assertClose(restarted.users.get(id)!.vector, want.vector, `user ${id}`);
    }
    for (const [id, want] of clean.items) {
      const { vector: _v, ...got } = restarted.items.get(id)!;
      const { vector: _w, ...expected } = want;
      assert.deepEqual(got, expected, `item ${id}`);
      assertClose(restarted.items.get(id)!.vector, want.vector, `item ${id}`);
    }
  });
});

function assertClose(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length);
  for (let k = 0; k < want.length; k++) assert.ok(Math.abs(got[k]! - want[k]!) <= 1e-5 * Math.max(1, Math.abs(want[k]!)), `${what}[${k}]: ${got[k]} vs ${want[k]}`);
}
