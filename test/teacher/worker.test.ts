import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { loadConfig } from '../../src/config/load.ts';
import type { TeacherCase, Trajectory } from '../../src/domain/teacher.ts';
import { createFraming } from '../../src/eventlog/codec/framing.ts';
import { createEventLog } from '../../src/eventlog/create.ts';
import type { EventLog, LogRecord } from '../../src/eventlog/port.ts';
import { FatalError, TransientError } from '../../src/errors/index.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { buildTeacherWorker } from '../../src/main.ts';
import { teacherCaseRecord } from '../../src/pipeline/outputs.ts';
import { decodeTrajectory } from '../../src/teacher/trajectories/codec.ts';
import { boundedAll } from '../../src/teacher/worker.ts';
import { eventually } from '../helpers.ts';
import { smallEngine } from '../stages/fixtures.ts';
import { syntheticCase } from './fixtures.ts';
import { ScriptedModel, politeScript, type Script } from './scripted-llm.ts';

const config = loadConfig({
  overrides: {
    store: { dimension: 8 },
    eventLog: { topics: { partitions: 1 }, embedded: { redeliveryDelayMs: 10, maxRedeliveryDelayMs: 50 } },
    teacher: { concurrency: 2, maxBatchRecords: 8, maxCaseAttempts: 3 },
  },
});
const polite = politeScript(() => ['user_history', {}]);

function cases(n: number): TeacherCase[] {
  return Array.from({ length: n }, (_, i) =>
    syntheticCase([{ itemId: 'a' }, { itemId: 'b' }, { itemId: 'c' }], { caseId: `case-e${i}`, eventId: `e${i}`, user: { ...syntheticCase([]).user, userId: `u${i}` } }),
  );
}

async function setup(script: Script) {
  const engine = await smallEngine();
  const log: EventLog = createEventLog(config, silentLogger());
  const registry = new Registry();
  const model = new ScriptedModel(script);
  const proc = await buildTeacherWorker(config, { logger: silentLogger(), log, store: engine.store, model, registry });
  const framing = createFraming(config.eventLog);
  const producer = log.producer();
  const send = async (items: TeacherCase[], garbage = false): Promise<void> => {
    const records = await Promise.all(items.map((c) => teacherCaseRecord(c, proc.topics.teacherCases, engine.codecs, framing)));
    if (garbage) records.push({ topic: proc.topics.teacherCases, key: 'ux', value: Buffer.from('not avro') });
    await producer.send(records);
  };
  const read = (topic: string): LogRecord[] => {
    const out: LogRecord[] = [];
    const consumer = log.consumer({ groupId: `reader-${topic}-${Math.random()}`, topics: [topic], fromBeginning: true, maxBatchRecords: 100 });
    void consumer.run(async (b) => void out.push(...b.records));
    readers.push(consumer);
    return out;
  };
  const readers: { stop(): Promise<void> }[] = [];
  const close = async (): Promise<void> => {
    await proc.worker.stop();
    for (const r of readers) await r.stop();
    await producer.close();
    await proc.close();
  };
  return { proc, model, registry, send, read, close };
}

describe('teacher worker on the embedded event log', () => {
  it('turns every case into one trajectory, dead-letters garbage, runs at most `concurrency` cases at once', async () => {
    let active = 0;
    let peak = 0;
    const slow: Script = async (call) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 3));
      active--;
      return polite(call);
    };
    const t = await setup(slow);
    const trajectories = t.read(t.proc.topics.trajectories);
    const dlq = t.read(t.proc.topics.deadLetters);
    const running = t.proc.worker.run();
    await t.send(cases(5), true);
    await eventually(() => trajectories.length === 5 && dlq.length === 1);
    const decoded: Trajectory[] = trajectories.map(decodeTrajectory);
    assert.deepEqual(decoded.map((x) => x.caseId).sort(), cases(5).map((c) => c.caseId).sort());
    assert.ok(decoded.every((x) => x.status === 'completed' && x.ranking.length === 3));
    assert.deepEqual(trajectories.map((r) => r.key?.toString()).sort(), ['u0', 'u1', 'u2', 'u3', 'u4']);
    assert.equal(peak, 2, 'two cases in flight, each one call at a time');
    const metrics = await t.registry.metrics();
    assert.match(metrics, /starstream_teacher_trajectories_total\{status="completed"\} 5/);
    assert.match(metrics, /starstream_teacher_dead_letters_total\{code="UNDECODABLE"\} 1/);
    assert.match(metrics, /starstream_teacher_turns_total\{agent="planner",outcome="ok"\} 5/);
    assert.match(metrics, /starstream_teacher_tool_calls_total\{tool="user_history",outcome="ok"\} 20/);
    assert.match(metrics, /starstream_teacher_agent_duration_seconds_count\{agent="ranker"\} 5/);
    assert.match(metrics, /starstream_teacher_llm_tokens_total\{agent="ranker",kind="prompt"\} \d+/);
    await t.close();
    await running;
  });

  it('retries a case whose run failed for a retriable reason, producing it once', async () => {
    let outages = 2;
    const flaky: Script = (call) => {
      if (call.agent === 'planner' && outages > 0) {
        outages--;
        throw new TransientError('HTTP_503', 'model server restarting');
      }
      return polite(call);
    };
    const t = await setup(flaky);
    const trajectories = t.read(t.proc.topics.trajectories);
    const running = t.proc.worker.run();
    await t.send(cases(2));
    await eventually(() => trajectories.length === 2);
    const decoded = trajectories.map(decodeTrajectory);
    assert.ok(decoded.every((x) => x.status === 'completed'), JSON.stringify(decoded.map((x) => x.failure)));
    assert.equal(new Set(decoded.map((x) => x.caseId)).size, 2, 'no case produced twice');
    await t.close();
    await running;
  });

  it('produces the failed trajectory of a case that keeps failing, and of a malformed run', async () => {
    const down: Script = (call) => {
      if (call.request.messages.some((m) => m.content.includes('user u0:'))) throw new TransientError('HTTP_503', 'down');
      if (call.agent === 'ranker') return 'nonsense';
      return polite(call);
    };
    const t = await setup(down);
    const trajectories = t.read(t.proc.topics.trajectories);
    const running = t.proc.worker.run();
    await t.send(cases(2));
    await eventually(() => trajectories.length === 2);
    const byCase = new Map(trajectories.map(decodeTrajectory).map((x) => [x.caseId, x]));
    assert.match(byCase.get('case-e0')!.failure!, /^LLM_UNAVAILABLE/);
    assert.match(byCase.get('case-e1')!.failure!, /^MALFORMED_ANSWER: ranker/);
    assert.equal(t.model.calls.filter((c) => c.agent === 'planner' && c.request.messages[1]!.content.includes('user u0:')).length, 3);
    await t.close();
    await running;
  });

  it('stops loudly on a fatal backend error', async () => {
    const t = await setup(() => {
      throw new FatalError('LLM_AUTH', 'bad key');
    });
    const running = t.proc.worker.run();
    await t.send(cases(1));
    await assert.rejects(running, FatalError);
    await t.close();
  });

  it('boundedAll keeps order, bounds concurrency, and waits for every started call before rethrowing', async () => {
    let active = 0;
    let peak = 0;
    const settled: number[] = [];
    const fn = async (x: number): Promise<number> => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 5 - x));
      active--;
      settled.push(x);
      if (x === 1) throw new Error('one');
      return x * 2;
    };
    assert.deepEqual(await boundedAll([0, 2, 3], 2, fn), [0, 4, 6]);
    assert.equal(peak, 2);
    settled.length = 0;
    await assert.rejects(boundedAll([0, 1, 2, 3], 2, fn), /one/);
    assert.ok(settled.includes(0) && settled.includes(1), 'started calls were awaited');
  });
});
