import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { TeacherCase, Trajectory } from '../../src/domain/teacher.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { createLanguageModel } from '../../src/teacher/llm/create.ts';
import type { LanguageModel } from '../../src/teacher/llm/port.ts';
import { runTeacher } from '../../src/teacher/run.ts';
import { parseSerialized } from '../../src/teacher/trajectories/serialize.ts';
import { WORLD, caseFor, filledStore, teacherDeps, type Filled } from './fixtures.ts';
import { serverSkipReason, startLlamaServer, type LlamaServer } from './llm/llama-server.ts';
import { teacherModel } from './llm/real-model.ts';

/**
 * The whole MARS teacher on a real language model (the 270M Gemma GGUF that `npm run teacher:model`
 * fetches), once through the embedded backend (node-llama-cpp) and once through the HTTP backend against a
 * real llama-cpp-python server: a case cut from the live store goes through planner, analysts (with tool
 * calls served by the store), reflector and ranker, and comes out as a complete trajectory. The small model's
 * judgement is not what is tested; the protocol around it is.
 */
const gguf = await teacherModel();
const modelSkip = 'skip' in gguf ? gguf.skip : false;
/** Small limits keep a run near a minute on one CPU thread: two analyst turns (a tool call, then a finding). */
const LIMITS = { maxAnalystTurns: 2, maxReflectionRounds: 1, maxWallMs: 240_000 };

async function oneCase(filled: Filled): Promise<TeacherCase> {
  return caseFor(filled.engine, filled.events[WORLD.events - 1]!, 5);
}

function assertComplete(t: Trajectory, c: TeacherCase, model: LanguageModel): void {
  assert.equal(t.status, 'completed', `failed: ${t.failure}`);
  assert.equal(t.backend, model.backend);
  const kinds = new Set(t.steps.map((s) => s.kind));
  for (const kind of ['plan', 'tool_call', 'tool_response', 'finding', 'reflection', 'recommend']) {
    assert.ok(kinds.has(kind as never), `a ${kind} step: ${[...kinds].join(', ')}`);
  }
  const responses = t.steps.filter((s) => s.kind === 'tool_response');
  const calls = t.steps.filter((s) => s.kind === 'tool_call' || s.kind === 'tool_response').map((s) => JSON.stringify(s).slice(0, 300));
  assert.ok(responses.some((s) => s.kind === 'tool_response' && !s.error && s.text.length > 0), `a tool answered from the store:\n${calls.join('\n')}`);
  assert.deepEqual([...t.ranking].sort(), c.candidates.map((e) => e.itemId).sort(), 'the final ranking is a permutation of the candidates');
  assert.equal(parseSerialized(t.serialized).length, t.steps.length, 'one marker block per step');
  assert.ok(t.turns.every((turn) => turn.promptTokens > 0), 'token counts recorded');
}

describe('MARS teacher on the real embedded model', { skip: modelSkip, timeout: 400_000 }, () => {
  let model: LanguageModel;
  let filled: Filled;
  before(async () => {
    if (!('path' in gguf)) return;
    filled = await filledStore();
    const config = parseConfig({ teacher: { llm: { backend: 'llama', modelPath: gguf.path, threads: 1 } } });
    model = await createLanguageModel(config.teacher.llm, silentLogger());
  });
  after(() => model?.close());

  it('turns a case from the live store into a complete trajectory', async (t) => {
    const c = await oneCase(filled);
    const trajectory = await runTeacher(c, teacherDeps(filled.engine, model, LIMITS));
    t.diagnostic(`${trajectory.turns.length} turns in ${trajectory.ms} ms; ranking ${trajectory.ranking.join(' ')}`);
    assertComplete(trajectory, c, model);
  });
});

describe('MARS teacher through the HTTP backend and a real llama-cpp-python server', { skip: modelSkip || serverSkipReason(), timeout: 400_000 }, () => {
  let server: LlamaServer | undefined;
  let model: LanguageModel;
  let filled: Filled;
  before(async () => {
    if (!('path' in gguf)) return;
    filled = await filledStore();
    server = await startLlamaServer(gguf.path, { contextSize: 4096 });
    const config = parseConfig({ teacher: { llm: { backend: 'openai', baseUrl: server.baseUrl, model: server.alias, timeoutMs: 120_000 } } });
    model = await createLanguageModel(config.teacher.llm, silentLogger());
  });
  after(async () => {
    await model?.close();
    await server?.stop();
  });

  it('turns a case from the live store into a complete trajectory', async (t) => {
    const c = await oneCase(filled);
    const trajectory = await runTeacher(c, teacherDeps(filled.engine, model, LIMITS));
    t.diagnostic(`${trajectory.turns.length} turns in ${trajectory.ms} ms; ranking ${trajectory.ranking.join(' ')}`);
    if (trajectory.status !== 'completed') t.diagnostic(`server output:\n${server?.output()}`);
    assertComplete(trajectory, c, model);
  });
});
