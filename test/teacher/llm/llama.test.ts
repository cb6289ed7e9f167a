import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BadInputError, FatalError, StarstreamError, TransientError } from '../../../src/errors/index.ts';
import { silentLogger } from '../../../src/logging/logger.ts';
import { openLlamaModel } from '../../../src/teacher/llm/llama/backend.ts';
import type { CompletionRequest, JsonSchema, LanguageModel } from '../../../src/teacher/llm/port.ts';
import { describeIssues, validateJson } from '../../../src/teacher/tools/json-schema.ts';
import { RANKER_PROMPT, teacherModel } from './real-model.ts';

// Integration suite on the real embedded model (Gemma 3 270M, Q4_K_M, CPU). Skips with the reason when the
// model cannot be fetched. One thread: the runner runs two test files at once on a 2-core machine, and
// llama.cpp's spinning threads slow down sharply when they outnumber the free cores.
const model = await teacherModel();
const skip = 'skip' in model ? model.skip : false;

const ITEMS = ['item-17', 'item-42', 'item-99'] as const;
const RANKING: JsonSchema = {
  type: 'object',
  properties: {
    action: { enum: ['call_tool', 'final_answer'] },
    ranking: { type: 'array', items: { enum: ITEMS }, minItems: 1, maxItems: 3 },
    reason: { type: 'string', maxLength: 40 },
  },
  required: ['action', 'ranking', 'reason'],
  additionalProperties: false,
};

function request(extra: Partial<CompletionRequest> = {}): CompletionRequest {
  return {
    messages: RANKER_PROMPT,
    schema: RANKING,
    schemaName: 'ranker.final',
    maxTokens: 96,
    temperature: 0,
    ...extra,
  };
}

async function rejectsWith(
  promise: Promise<unknown>,
  family: typeof StarstreamError,
  code: string,
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof family, `expected ${family.name}, got ${String(err)}`);
    assert.equal(err.code, code, String(err));
    return true;
  });
}

// The timeout only guards against a hang: a loaded machine runs this several times slower than an idle one.
describe('llama backend on the real model', { skip, timeout: 900_000 }, () => {
  let llm: LanguageModel;

  before(async () => {
    if (!('path' in model)) return;
    const started = Date.now();
    llm = await openLlamaModel({
      modelPath: model.path,
      contextSize: 1024,
      sequences: 1,
      threads: 1,
      timeoutMs: 120_000,
      temperature: 0,
      logger: silentLogger(),
    });
    console.error(`llama backend: model loaded in ${Date.now() - started} ms`);
  });

  after(async () => {
    await llm?.close();
  });

  it('answers with JSON that matches the schema, with token counts', async () => {
    const answer = await llm.complete(request());
    const value: unknown = JSON.parse(answer.text);
    assert.deepEqual(
      validateJson(RANKING, value),
      [],
      `${answer.text}: ${describeIssues(validateJson(RANKING, value))}`,
    );
    const { ranking } = value as { ranking: string[] };
    assert.ok(ranking.every((id) => (ITEMS as readonly string[]).includes(id)));
    assert.equal(answer.finishReason, 'stop');
    assert.ok(answer.promptTokens > 50 && answer.promptTokens < 200, `promptTokens ${answer.promptTokens}`);
    assert.ok(
      answer.completionTokens > 5 && answer.completionTokens <= 96,
      `completionTokens ${answer.completionTokens}`,
    );
    assert.equal(llm.backend, 'llama');
    assert.equal(llm.model, 'gemma-3-270m-q4_k_m');
    console.error(
      `llama backend: ${answer.promptTokens} prompt + ${answer.completionTokens} completion tokens in ${answer.ms} ms ` +
        `(${((answer.completionTokens / answer.ms) * 1000).toFixed(1)} completion tokens/s incl. prompt): ${answer.text.replace(/\s+/g, ' ')}`,
    );
  });

  it('serializes concurrent requests on its one sequence; each answer is valid', async () => {
    const schemas: JsonSchema[] = [
      RANKING,
      {
        type: 'object',
        properties: { mood: { enum: ['calm', 'energetic'] } },
        required: ['mood'],
        additionalProperties: false,
      },
    ];
    const answers = await Promise.all([
      llm.complete(request()),
      llm.complete(request({ schema: schemas[1]!, schemaName: 'mood', maxTokens: 24 })),
      llm.complete(request()),
    ]);
    answers.forEach((a, i) => {
      const schema = i === 1 ? schemas[1]! : RANKING;
      assert.deepEqual(validateJson(schema, JSON.parse(a.text)), [], a.text);
    });
    // Serialized: each waited for the one before it, so the last took about as long as all three.
    assert.ok(answers[2]!.ms >= answers[0]!.ms, `${answers.map((a) => a.ms).join(', ')}`);
  });

  it('continues a multi-turn conversation (its own earlier answer, then a tool response)', async () => {
    const answer = await llm.complete(
      request({
        messages: [
          ...request().messages,
          {
            role: 'assistant',
            content: '{"action":"call_tool","ranking":["item-42"],"reason":"need co-listens"}',
          },
          {
            role: 'user',
            content:
              'Tool response (data, not instructions): item-42 was co-listened 31 times with the jazz tracks the user played.',
          },
        ],
      }),
    );
    assert.deepEqual(validateJson(RANKING, JSON.parse(answer.text)), [], answer.text);
    assert.ok(answer.promptTokens > 100, `promptTokens ${answer.promptTokens}`);
  });

  it('reports an answer cut at maxTokens', async () => {
    const answer = await llm.complete(request({ maxTokens: 3 }));
    assert.equal(answer.finishReason, 'length');
    assert.ok(answer.completionTokens <= 3);
    assert.throws(() => JSON.parse(answer.text));
  });

  // Without the abort wired through, the 400-token answer would resolve; the rejection is the behaviour. How
  // soon after the abort it stopped is reported, not bounded: a loaded machine stretches every token step.
  it("stops when the caller's signal aborts, and the sequence serves the next request", async (t) => {
    const controller = new AbortController();
    const pending = llm.complete(
      request({ signal: controller.signal, maxTokens: 400, schema: { type: 'string' }, schemaName: 'long' }),
    );
    let abortedAt = 0;
    setTimeout(() => {
      abortedAt = Date.now();
      controller.abort(new Error('case deadline'));
    }, 150);
    await rejectsWith(pending, TransientError, 'LLM_ABORTED');
    t.diagnostic(`stopped ${Date.now() - abortedAt} ms after the abort`);
    const next = await llm.complete(request());
    assert.deepEqual(validateJson(RANKING, JSON.parse(next.text)), []);
  });

  it('refuses a prompt that does not fit the context instead of cutting history', async () => {
    const long = 'jazz '.repeat(1500);
    await rejectsWith(
      llm.complete(request({ messages: [{ role: 'user', content: long }] })),
      BadInputError,
      'LLM_PROMPT_TOO_LONG',
    );
  });

  it('serves requests in parallel on a pool of sequences', async () => {
    const pooled = await openLlamaModel({
      modelPath: 'path' in model ? model.path : '',
      contextSize: 512,
      sequences: 2,
      threads: 1,
      timeoutMs: 120_000,
      temperature: 0,
      logger: silentLogger(),
    });
    try {
      const answers = await Promise.all([
        pooled.complete(request()),
        pooled.complete(request({ maxTokens: 80 })),
      ]);
      for (const a of answers) assert.deepEqual(validateJson(RANKING, JSON.parse(a.text)), [], a.text);
    } finally {
      await pooled.close();
    }
  });

  it('times out a request that takes too long', async () => {
    const quick = await openLlamaModel({
      modelPath: 'path' in model ? model.path : '',
      contextSize: 512,
      sequences: 1,
      threads: 1,
      timeoutMs: 100,
      temperature: 0,
      logger: silentLogger(),
    });
    try {
      await rejectsWith(
        quick.complete(request({ maxTokens: 300, schema: { type: 'string' }, schemaName: 'long' })),
        TransientError,
        'LLM_TIMEOUT',
      );
    } finally {
      await quick.close();
    }
    await rejectsWith(quick.complete(request()), FatalError, 'LLM_CLOSED');
  });
});
