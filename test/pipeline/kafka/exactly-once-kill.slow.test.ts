/**
 * Exactly-once outputs (`eventLog.kafka.exactlyOnce`) when one of two `starstream run` instances is SIGKILLed
 * mid-stream (RELIABILITY.md "What each mode guarantees", issue 16; `npm run test:slow` only).
 *
 * Two children in one consumer group split the partitions; once both have made progress, one is SIGKILLed (no
 * drain, no abort, no leaving the group). The survivor takes its partitions over after the session timeout;
 * its first transaction on each of them initializes that partition's transactional id, which aborts whatever
 * the killed one left open (until then, read_committed readers of the output partitions it wrote to wait at
 * the open transaction). Required, read with read_committed: every input offset answered exactly once
 * (0 missing, 0 duplicates). Whether the kill lands inside a transaction is up to timing (with exactlyOnce
 * off, `no-loss.slow.test.ts` also saw 0 duplicates in its last run), so this shows the mode holding across
 * a process death and a rebalance; the fencing itself is shown deterministically in `exactly-once.test.ts`.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { generateStream } from '../../../src/data/synthetic.ts';
import { assertAccountedFor, describeAccounting, startCollector } from './accounting.ts';
import {
  anyExited,
  brokers,
  committedOffsets,
  createTestTopics,
  encodeInteractions,
  groupAssignment,
  onCleanup,
  pipelineEnv,
  producePaced,
  spawnPipeline,
  stopGracefully,
  stopOwnBroker,
  testEventLog,
  waitUntil,
  withGarbage,
} from './harness.ts';

after(() => stopOwnBroker());

const EVENTS = Number(process.env.EXACTLY_ONCE_KILL_EVENTS ?? 20_000);
const PARTITIONS = 4;
const MAX_BATCH = 100;
const GARBAGE_EVERY = 1_000;

describe('exactly-once outputs across SIGKILL of an instance', { timeout: 900_000 }, () => {
  it(`answers each of ${EVENTS} events once when one of two instances is SIGKILLed mid-stream`, async (t) => {
    const env = pipelineEnv({
      brokers: await brokers(),
      partitions: PARTITIONS,
      maxBatchRecords: MAX_BATCH,
      extra: { STARSTREAM_EVENT_LOG__KAFKA__EXACTLY_ONCE: 'true', STARSTREAM_STORE__DIMENSION: '8' },
    });
    const setup = await createTestTopics(t, env);
    const { brokerList, topics } = setup;
    const groupId = setup.config.pipeline.groupId;
    const collector = await startCollector(t, { brokers: brokerList, topics, codecs: setup.codecs, framing: setup.framing });
    const clientId = setup.config.eventLog.kafka.clientId;
    const a = spawnPipeline(t, 'instance a', { ...env, STARSTREAM_EVENT_LOG__KAFKA__CLIENT_ID: `${clientId}-a` });
    const b = spawnPipeline(t, 'instance b', { ...env, STARSTREAM_EVENT_LOG__KAFKA__CLIENT_ID: `${clientId}-b` });
    const split = await waitUntil(
      async () => {
        const owners = await groupAssignment(brokerList, groupId, topics.interactions);
        return owners?.size === 2 && [...owners.values()].every((p) => p.length === PARTITIONS / 2) ? owners : null;
      },
      { timeoutMs: 120_000, intervalMs: 500, failed: anyExited(a, b), what: 'both instances to share the partitions' },
    );
    const ofA = split.get(`${clientId}-a`) ?? [];

    const producer = producePaced(
      testEventLog(t, setup),
      withGarbage(encodeInteractions(setup, generateStream({ events: EVENTS, users: 2_000, items: 2_000, seed: 162 })), GARBAGE_EVERY),
      { ratePerSec: 2_000, chunk: 200 },
    );
    onCleanup(t, () => producer.stop());
    await waitUntil(
      async () => {
        const committed = await committedOffsets(brokerList, groupId, topics.interactions);
        return ofA.some((p) => (committed.get(p) ?? -1n) > 0n) && collector.outputRecords >= EVENTS / 4;
      },
      { timeoutMs: 300_000, intervalMs: 200, failed: anyExited(a, b), what: 'progress of instance a' },
    );
    const killedAt = collector.outputRecords;
    a.signal('SIGKILL');
    await a.exited;
    const killedMs = Date.now();
    await waitUntil(() => collector.outputRecords > killedAt + MAX_BATCH, { timeoutMs: 300_000, failed: anyExited(b), what: 'outputs after the kill' });
    const stallMs = Date.now() - killedMs;

    assert.equal(await producer.done, EVENTS);
    const result = await collector.waitForAccounting(EVENTS, { timeoutMs: 600_000, stallMs: 120_000, diagnostics: () => b.output(), failed: anyExited(b) });
    t.diagnostic(describeAccounting(result));
    t.diagnostic(`SIGKILL a (partitions ${JSON.stringify(ofA)}) after ${killedAt} outputs; the next ${MAX_BATCH} outputs (b's own partitions included) ${stallMs} ms after it; ${result.extraAnswers} duplicates`);
    assertAccountedFor(result, { inputs: EVENTS, deadLettered: Math.floor(EVENTS / GARBAGE_EVERY), deadLetterCodes: ['UNDECODABLE'], maxExtraAnswers: 0 });
    const { status } = await stopGracefully(b, 20_000 + 120_000);
    assert.deepEqual(status, { code: 0, signal: null }, `instance b after SIGTERM:\n${b.output()}`);
  });
});
