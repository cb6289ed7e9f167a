import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { TeacherCase, Trajectory } from '../../src/domain/teacher.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { createLanguageModel } from '../../src/teacher/llm/create.ts';
import type { LanguageModel } from '../../src/teacher/llm/port.ts';
import { AGENTS } from '../../src/teacher/agents/roles.ts';
import { DEFAULT_TEACHER_LIMITS, failureCodeOf, type FailureCode } from '../../src/teacher/limits.ts';
import { runTeacher } from '../../src/teacher/run.ts';
import { parseSerialized } from '../../src/teacher/trajectories/serialize.ts';
import { WORLD, caseFor, filledStore, teacherDeps, type Filled } from './fixtures.ts';
import { serverSkipReason, startLlamaServer, type LlamaServer } from './llm/llama-server.ts';
import { teacherModel } from './llm/real-model.ts';

/**
 * The whole MARS teacher on a real language model (the 270M Gemma GGUF that `npm run teacher:model`
 * fetches), once through the embedded backend (node-llama-cpp) and once through the HTTP backend against a
 * real llama-cpp-python server: a case cut from the live store goes through planner, analysts (with tool
 * calls served by the store), reflector and ranker, and comes out as a trajectory. The small model's
 * judgement is not what is tested, nor the machine's speed; the protocol around them is: every LLM call is a
 * recorded turn, the steps and their serialized form agree, and the run ends either completed with a valid
 * ranking or failed for a reason the model or its limits explain (a 270M model may well answer badly three
 * times; a loaded machine was seen to fail the HTTP run), never for the pipeline's own fault.
 */
const gguf = await teacherModel();
const modelSkip = 'skip' in gguf ? gguf.skip : false;
/**
 * Small limits keep a run near a minute on one CPU thread: two analyst turns (a tool call, then a finding).
 * The wall limit and the HTTP timeout are guards against a hang, far beyond a run on a loaded machine.
 */
const LIMITS = { maxAnalystTurns: 2, maxReflectionRounds: 1, maxWallMs: 900_000 };
const SUITE_TIMEOUT_MS = 1_200_000;

/** Failures a run on a real small model may end in without anything being wrong with the protocol. */
const MODEL_FAILURES: ReadonlySet<FailureCode> = new Set(['MALFORMED_ANSWER', 'TURN_LIMIT', 'TOKEN_LIMIT', 'TIME_LIMIT']);

async function oneCase(filled: Filled): Promise<TeacherCase> {
  return caseFor(filled.engine, filled.events[WORLD.events - 1]!, 5);
}

/** The model with its calls counted, so the trajectory can be checked to hold one turn per call. */
function counted(model: LanguageModel): { model: LanguageModel; calls: () => number } {
  let calls = 0;
  return {
    model: {
      backend: model.backend,
      model: model.model,
      complete: (request) => {
        calls++;
        return model.complete(request);
      },
      close: () => model.close(),
    },
    calls: () => calls,
  };
}

/** What every run must show, completed or not: the protocol held, whatever the model answered. */
function assertProtocol(t: Trajectory, c: TeacherCase, model: LanguageModel, calls: number): void {
  assert.equal(t.caseId, c.caseId);
  assert.equal(t.backend, model.backend);
  assert.equal(t.model, model.model);
  // Every LLM call recorded, refused and failed ones included.
  assert.equal(t.turns.length, calls, 'one turn per LLM call');
  assert.ok(calls > 0, 'the model was asked');
  for (const turn of t.turns) {
    assert.ok((AGENTS as readonly string[]).includes(turn.agent), `a turn of an unknown agent ${turn.agent}`);
    assert.ok(turn.attempt >= 0 && turn.attempt <= DEFAULT_TEACHER_LIMITS.maxRetries, `attempt ${turn.attempt}`);
    // A call that returned counts its tokens; one the backend failed has none and says why.
    if (turn.promptTokens === 0) assert.ok(turn.error, 'a call without tokens says why');
  }
  assert.ok(
    t.turns.some((turn) => turn.error === null && turn.promptTokens > 0 && turn.completionTokens > 0),
    `the backend answered at least once, validly: ${JSON.stringify(t.turns)}`,
  );
  assert.equal(parseSerialized(t.serialized).length, t.steps.length, 'one marker block per step');
  if (t.steps.length > 0) assert.equal(t.steps[0]!.kind, 'plan', 'the planner speaks first');
  const toolCalls = t.steps.filter((s) => s.kind === 'tool_call').length;
  const toolResponses = t.steps.filter((s) => s.kind === 'tool_response');
  // Each call is answered, right away: at most the last one was cut by the run's end.
  assert.ok(toolResponses.length <= toolCalls && toolCalls - toolResponses.length <= (t.status === 'completed' ? 0 : 1), `${toolCalls} tool calls, ${toolResponses.length} responses`);
  for (const r of toolResponses) if (r.kind === 'tool_response' && !r.error) assert.ok(r.text.length > 0, 'a tool answered from the store');

  if (t.status === 'completed') {
    assert.equal(t.failure, null);
    const kinds = new Set(t.steps.map((s) => s.kind));
    for (const kind of ['plan', 'finding', 'reflection', 'recommend'] as const) assert.ok(kinds.has(kind), `a ${kind} step: ${[...kinds].join(', ')}`);
    assert.deepEqual([...t.ranking].sort(), c.candidates.map((e) => e.itemId).sort(), 'the final ranking is a permutation of the candidates');
  } else {
    assert.equal(t.status, 'failed');
    assert.deepEqual(t.ranking, [], 'a failed run ranks nothing');
    const code = failureCodeOf(t.failure);
    assert.ok(code !== null && MODEL_FAILURES.has(code), `a failure the model or its limits explain, not ${t.failure}`);
    // A malformed answer is on record: the last turn is the refused one, with the reason.
    if (code === 'MALFORMED_ANSWER') assert.ok(t.turns.at(-1)!.error, 'the refused answer is recorded');
  }
}

describe('MARS teacher on the real embedded model', { skip: modelSkip, timeout: SUITE_TIMEOUT_MS }, () => {
  let model: LanguageModel;
  let filled: Filled;
  before(async () => {
    if (!('path' in gguf)) return;
    filled = await filledStore();
    const config = parseConfig({ teacher: { llm: { backend: 'llama', modelPath: gguf.path, threads: 1 } } });
    model = await createLanguageModel(config.teacher.llm, silentLogger());
  });
  after(() => model?.close());

  it('turns a case from the live store into a well-formed trajectory', async (t) => {
    const c = await oneCase(filled);
    const llm = counted(model);
    const trajectory = await runTeacher(c, teacherDeps(filled.engine, llm.model, LIMITS));
    t.diagnostic(`${trajectory.status} (${trajectory.failure ?? 'ok'}): ${trajectory.turns.length} turns in ${trajectory.ms} ms; ranking ${trajectory.ranking.join(' ')}`);
    assertProtocol(trajectory, c, model, llm.calls());
  });
});

describe('MARS teacher through the HTTP backend and a real llama-cpp-python server', { skip: modelSkip || serverSkipReason(), timeout: SUITE_TIMEOUT_MS }, () => {
  let server: LlamaServer | undefined;
  let model: LanguageModel;
  let filled: Filled;
  before(async () => {
    if (!('path' in gguf)) return;
    filled = await filledStore();
    server = await startLlamaServer(gguf.path, { contextSize: 4096 });
    const config = parseConfig({ teacher: { llm: { backend: 'openai', baseUrl: server.baseUrl, model: server.alias, timeoutMs: LIMITS.maxWallMs } } });
    model = await createLanguageModel(config.teacher.llm, silentLogger());
  });
  after(async () => {
    await model?.close();
    await server?.stop();
  });

  it('turns a case from the live store into a well-formed trajectory', async (t) => {
    const c = await oneCase(filled);
    const llm = counted(model);
    const trajectory = await runTeacher(c, teacherDeps(filled.engine, llm.model, LIMITS));
    t.diagnostic(`${trajectory.status} (${trajectory.failure ?? 'ok'}): ${trajectory.turns.length} turns in ${trajectory.ms} ms; ranking ${trajectory.ranking.join(' ')}`);
    if (trajectory.status !== 'completed') t.diagnostic(`server output:\n${server?.output()}`);
    assertProtocol(trajectory, c, model, llm.calls());
  });
});
