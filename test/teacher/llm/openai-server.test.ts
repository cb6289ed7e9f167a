import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../../src/config/load.ts';
import { BadInputError } from '../../../src/errors/index.ts';
import { createLanguageModel } from '../../../src/teacher/llm/create.ts';
import type { JsonSchema, LanguageModel } from '../../../src/teacher/llm/port.ts';
import { describeIssues, validateJson } from '../../../src/teacher/tools/json-schema.ts';
import { eventually } from '../../helpers.ts';
import { teacherModel } from './real-model.ts';

// The HTTP backend against a real OpenAI-compatible server: llama-cpp-python's (`python -m llama_cpp.server`)
// on the same GGUF as the embedded backend, started here on a free loopback port. The server comes from
// `npm run teacher:server` (scripts/llm-server/install.sh, which .ci/run calls); without it the suite skips
// with the reason.
const VENV = process.env.STAR_LLM_SERVER_VENV ?? resolve('.cache/llm-server/venv');
const PYTHON = join(VENV, 'bin', 'python');
const model = await teacherModel();
const skip =
  'skip' in model
    ? model.skip
    : existsSync(PYTHON)
      ? false
      : `no llama-cpp-python server at ${VENV} (npm run teacher:server installs it)`;

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

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}

describe('openai backend against a real llama-cpp-python server', { skip, timeout: 300_000 }, () => {
  let server: ChildProcess | undefined;
  let baseUrl = '';
  const serverLog: string[] = [];
  const logs: { msg?: string; refused?: string; next?: string }[] = [];
  let llm: LanguageModel;

  before(async () => {
    if (!('path' in model)) return;
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}/v1`;
    const started = Date.now();
    // --n_threads 1: the test runner runs two files at once on a 2-core machine; llama.cpp's spinning threads
    // slow down sharply when they outnumber the free cores.
    const args = ['-m', 'llama_cpp.server', '--model', model.path, '--model_alias', 'gemma-3-270m'];
    args.push(
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--n_ctx',
      '1024',
      '--n_threads',
      '1',
      '--verbose',
      'false',
    );
    const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    server = child;
    const keep = (chunk: Buffer): void => {
      serverLog.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      serverLog.splice(0, Math.max(0, serverLog.length - 40));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    await eventually(
      async () => {
        if (child.exitCode !== null)
          throw new Error(`server exited ${child.exitCode}:\n${serverLog.join('\n')}`);
        const res = await fetch(`${baseUrl}/models`).catch(() => null);
        return res?.ok;
      },
      90_000,
      200,
    ).catch((err: unknown) => {
      throw new Error(`llama-cpp-python server did not come up: ${String(err)}\n${serverLog.join('\n')}`);
    });
    console.error(`llama-cpp-python server ready on ${baseUrl} in ${Date.now() - started} ms`);
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
    const child = server;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  });

  it('answers schema-valid JSON, stepping down from json_schema to what the server supports', async () => {
    const answer = await llm.complete({
      messages: [
        { role: 'system', content: 'You are the ranker of a music recommender. Answer with JSON only.' },
        {
          role: 'user',
          content:
            'The user listened to jazz all week. Candidates: item-17 (metal album), item-42 (jazz album), ' +
            'item-99 (pop single). Give your final answer: rank the candidates, best first.',
        },
      ],
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
