import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../../src/config/load.ts';
import { BadInputError } from '../../../src/errors/index.ts';
import { createLanguageModel } from '../../../src/teacher/llm/create.ts';
import type { JsonSchema, LanguageModel } from '../../../src/teacher/llm/port.ts';
import { describeIssues, validateJson } from '../../../src/teacher/tools/json-schema.ts';
import { startLlamaServer, serverSkipReason, type LlamaServer } from './llama-server.ts';
import { RANKER_PROMPT, teacherModel } from './real-model.ts';

// The HTTP backend against a real OpenAI-compatible server: llama-cpp-python's on the same GGUF as the
// embedded backend, started here (llama-server.ts); without it the suite skips with the reason.
const model = await teacherModel();
const skip = 'skip' in model ? model.skip : serverSkipReason();

const CHOICES = ['item-17', 'item-42', 'item-99'] as const;
const SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    action: { enum: ['call_tool', 'final_answer'] },
    ranking: { type: 'array', items: { enum: CHOICES }, minItems: 1, maxItems: 3 },
  },
  required: ['action', 'ranking'],
  additionalProperties: false,
};

// The timeout only guards against a hang: a loaded machine runs this several times slower than an idle one.
describe('openai backend against a real llama-cpp-python server', { skip, timeout: 900_000 }, () => {
  let server: LlamaServer | undefined;
  const logs: { msg?: string; refused?: string; next?: string }[] = [];
  let llm: LanguageModel;

  before(async () => {
    if (!('path' in model)) return;
    server = await startLlamaServer(model.path);
    const baseUrl = server.baseUrl;
    console.error(`llama-cpp-python server ready on ${baseUrl} in ${server.startedInMs} ms`);
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          logs.push(JSON.parse(chunk.toString('utf8')) as (typeof logs)[number]);
          done();
        },
      }),
    );
    const config = parseConfig({
      teacher: { llm: { backend: 'openai', baseUrl, model: 'gemma-3-270m', timeoutMs: 120_000 } },
    });
    llm = await createLanguageModel(config.teacher.llm, logger);
  });

  after(async () => {
    await llm?.close();
    await server?.stop();
  });

  it('answers schema-valid JSON, stepping down from json_schema to what the server supports', async () => {
    const answer = await llm.complete({
      messages: RANKER_PROMPT,
      schema: SCHEMA,
      schemaName: 'ranker.final',
      maxTokens: 64,
      temperature: 0,
    });
    const value: unknown = JSON.parse(answer.text);
    assert.deepEqual(
      validateJson(SCHEMA, value),
      [],
      `${answer.text}: ${describeIssues(validateJson(SCHEMA, value))}`,
    );
    assert.ok(answer.promptTokens > 30, `promptTokens ${answer.promptTokens}`);
    assert.ok(answer.completionTokens > 3, `completionTokens ${answer.completionTokens}`);
    assert.equal(answer.finishReason, 'stop');
    // llama-cpp-python refuses `json_schema` (it knows only json_object with a `schema`): the backend noticed.
    const fallback = logs.find((l) => l.refused === 'json_schema');
    assert.equal(fallback?.next, 'json_object_schema', JSON.stringify(logs));
    console.error(
      `openai backend via llama-cpp-python: ${answer.promptTokens} + ${answer.completionTokens} tokens in ${answer.ms} ms: ` +
        answer.text.replace(/\s+/g, ' '),
    );
  });

  it("maps the server's context-length refusal to LLM_PROMPT_TOO_LONG", async () => {
    await assert.rejects(
      llm.complete({
        messages: [{ role: 'user', content: 'jazz '.repeat(1500) }],
        schema: SCHEMA,
        schemaName: 'ranker.final',
        maxTokens: 16,
      }),
      (err: unknown) => err instanceof BadInputError && err.code === 'LLM_PROMPT_TOO_LONG',
    );
  });
});
