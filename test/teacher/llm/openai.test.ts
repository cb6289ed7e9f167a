import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadInputError, FatalError, StarstreamError, TransientError } from '../../../src/errors/index.ts';
import { Writable } from 'node:stream';
import { createLogger, silentLogger } from '../../../src/logging/logger.ts';
import {
  createOpenAiLanguageModel,
  parseCompletion,
  type OpenAiBackendOptions,
} from '../../../src/teacher/llm/openai/backend.ts';
import {
  classifyHttpError,
  isResponseFormatRefusal,
  parseErrorBody,
} from '../../../src/teacher/llm/openai/errors.ts';
import { chatCompletionBody, schemaNameForApi } from '../../../src/teacher/llm/openai/request.ts';
import type { CompletionRequest, LanguageModel } from '../../../src/teacher/llm/port.ts';
import { completionBody, startFakeEndpoint, type FakeEndpoint, type FakeReply } from './fake-openai.ts';

const SCHEMA = {
  type: 'object',
  properties: {
    action: { enum: ['call_tool', 'answer'] },
    itemIds: { type: 'array', items: { type: 'string' } },
  },
  required: ['action', 'itemIds'],
  additionalProperties: false,
} as const;

const REQUEST: CompletionRequest = {
  messages: [
    { role: 'system', content: 'You rank items.' },
    { role: 'user', content: 'Rank i1, i2.' },
  ],
  schema: SCHEMA,
  schemaName: 'ranker.answer',
  maxTokens: 64,
};

const FAST_RETRY = { retries: 2, initialDelayMs: 1, maxDelayMs: 5, multiplier: 2, jitter: 0.2 };

function options(baseUrl: string, extra: Partial<OpenAiBackendOptions> = {}): OpenAiBackendOptions {
  return {
    baseUrl,
    model: 'test-model',
    // Per try: only the tests about timeouts set a short one; a loaded machine must not time out the others.
    timeoutMs: 60_000,
    retry: FAST_RETRY,
    responseFormat: 'auto',
    strictSchema: true,
    temperature: 0,
    logger: silentLogger(),
    ...extra,
  };
}

/** Runs `fn` against a fake endpoint that answers with `script`, and always closes both. */
async function withEndpoint(
  script: readonly FakeReply[] | Parameters<typeof startFakeEndpoint>[0],
  fn: (llm: LanguageModel, endpoint: FakeEndpoint) => Promise<void>,
  extra: Partial<OpenAiBackendOptions> = {},
): Promise<void> {
  const endpoint = await startFakeEndpoint(script);
  const llm = createOpenAiLanguageModel(options(endpoint.baseUrl, extra));
  try {
    await fn(llm, endpoint);
  } finally {
    await llm.close();
    await endpoint.close();
  }
}

/** A warn-level logger that keeps the backend's retry warnings: the code of each retried error, in order. */
function retryLog(): { logger: OpenAiBackendOptions['logger']; retries: () => string[] } {
  const retries: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        const entry = JSON.parse(line) as { msg?: string; code?: string };
        if (entry.msg === 'teacher llm: retrying the endpoint') retries.push(String(entry.code));
      }
      done();
    },
  });
  return { logger: createLogger('warn', sink), retries: () => retries };
}

async function rejectsWith(
  promise: Promise<unknown>,
  family: typeof StarstreamError | typeof TransientError,
  code: string,
): Promise<StarstreamError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof family, `expected ${family.name}, got ${String(err)}`);
    assert.equal((err as StarstreamError).code, code, String(err));
    return err as StarstreamError;
  }
  assert.fail(`expected a ${code} rejection`);
}

describe('openai backend: request building', () => {
  it('sends the schema as strict json_schema with the request fields', () => {
    const body = chatCompletionBody(
      { ...REQUEST, temperature: 0.3 },
      { model: 'm', mode: 'json_schema', strict: true, temperature: 0 },
    );
    assert.deepEqual(body, {
      model: 'm',
      messages: REQUEST.messages,
      max_tokens: 64,
      temperature: 0.3,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'ranker_answer', schema: SCHEMA, strict: true },
      },
      stream: false,
    });
  });

  it('uses the configured temperature when the request sets none', () => {
    const body = chatCompletionBody(REQUEST, {
      model: 'm',
      mode: 'json_schema',
      strict: false,
      temperature: 0.7,
    });
    assert.equal(body.temperature, 0.7);
    assert.equal((body.response_format as { json_schema: { strict: boolean } }).json_schema.strict, false);
  });

  it('puts the schema into the system prompt in the json_object modes', () => {
    for (const mode of ['json_object_schema', 'json_object'] as const) {
      const body = chatCompletionBody(REQUEST, { model: 'm', mode, strict: true, temperature: 0 });
      const messages = body.messages as { role: string; content: string }[];
      assert.equal(messages.length, 2);
      assert.match(
        messages[0]!.content,
        /^You rank items\.\n\nAnswer with one JSON value that matches this JSON Schema \(ranker\.answer\):\n\{/,
      );
      assert.equal(messages[1]!.content, 'Rank i1, i2.');
      assert.deepEqual(
        body.response_format,
        mode === 'json_object' ? { type: 'json_object' } : { type: 'json_object', schema: SCHEMA },
      );
    }
    const noSystem = chatCompletionBody(
      { ...REQUEST, messages: [{ role: 'user', content: 'hi' }] },
      { model: 'm', mode: 'json_object', strict: true, temperature: 0 },
    );
    assert.deepEqual(
      (noSystem.messages as { role: string }[]).map((m) => m.role),
      ['system', 'user'],
    );
  });

  it('makes schema names acceptable to the API', () => {
    assert.equal(schemaNameForApi('analyst/long-term v2'), 'analyst_long-term_v2');
    assert.equal(schemaNameForApi(''), 'answer');
    assert.equal(schemaNameForApi('x'.repeat(80)).length, 64);
  });

  it('POSTs to {baseUrl}/chat/completions with the bearer key and reads usage', async () => {
    await withEndpoint(
      [
        {
          body: completionBody('{"action":"answer","itemIds":["i2"]}', {
            prompt_tokens: 31,
            completion_tokens: 9,
          }),
        },
      ],
      async (llm, endpoint) => {
        const answer = await llm.complete(REQUEST);
        assert.equal(answer.text, '{"action":"answer","itemIds":["i2"]}');
        assert.equal(answer.promptTokens, 31);
        assert.equal(answer.completionTokens, 9);
        assert.equal(answer.finishReason, 'stop');
        assert.ok(answer.ms >= 0);
        const [req] = endpoint.requests;
        assert.equal(req?.method, 'POST');
        assert.equal(req?.url, '/v1/chat/completions');
        assert.equal(req?.headers.authorization, 'Bearer sk-test');
        assert.equal(req?.headers['content-type'], 'application/json');
        assert.equal(req?.body.model, 'test-model');
        assert.equal(llm.backend, 'openai');
        assert.equal(llm.model, 'test-model');
      },
      { apiKey: 'sk-test' },
    );
  });

  it('sends no authorization header without a key, and tolerates a trailing slash in baseUrl', async () => {
    const endpoint = await startFakeEndpoint([{ body: completionBody('{}') }]);
    const llm = createOpenAiLanguageModel(options(`${endpoint.baseUrl}/`));
    try {
      await llm.complete(REQUEST);
      assert.equal(endpoint.requests[0]?.url, '/v1/chat/completions');
      assert.equal(endpoint.requests[0]?.headers.authorization, undefined);
    } finally {
      await llm.close();
      await endpoint.close();
    }
  });

  it('reports an answer cut at maxTokens, and 0 tokens where the server sends no usage', () => {
    const cut = parseCompletion(JSON.stringify(completionBody('{"act', undefined, 'length')), 'u');
    assert.equal(cut.finishReason, 'length');
    const noUsage = parseCompletion(
      JSON.stringify({ choices: [{ message: { content: '{}' }, finish_reason: 'stop' }] }),
      'u',
    );
    assert.equal(noUsage.promptTokens, 0);
    assert.equal(noUsage.completionTokens, 0);
  });
});

describe('openai backend: response_format fallback', () => {
  // llama-cpp-python's server answers json_schema with a 500 that names the field (its validation error).
  const llamaCppPythonRefusal: FakeReply = {
    status: 500,
    body: {
      error: {
        message:
          "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\"}",
        type: 'internal_server_error',
      },
    },
  };

  it('steps down to json_object with a schema when the server refuses json_schema, and stays there', async () => {
    await withEndpoint(
      (req) =>
        (req.body.response_format as { type: string }).type === 'json_schema'
          ? llamaCppPythonRefusal
          : { body: completionBody('{"action":"answer","itemIds":[]}') },
      async (llm, endpoint) => {
        assert.equal((await llm.complete(REQUEST)).text, '{"action":"answer","itemIds":[]}');
        await llm.complete(REQUEST);
        const formats = endpoint.requests.map(
          (r) => r.body.response_format as { type: string; schema?: unknown },
        );
        assert.deepEqual(
          formats.map((f) => [f.type, f.schema !== undefined]),
          [
            ['json_schema', false],
            ['json_object', true],
            ['json_object', true],
          ],
        );
      },
    );
  });

  it('steps down to plain json_object when the schema field is refused too (422)', async () => {
    await withEndpoint(
      (req) => {
        const format = req.body.response_format as { type: string; schema?: unknown };
        if (format.type === 'json_schema' || format.schema !== undefined) {
          return {
            status: 422,
            body: { detail: [{ loc: ['body', 'response_format'], msg: 'extra fields not permitted' }] },
          };
        }
        return { body: completionBody('{}') };
      },
      async (llm, endpoint) => {
        await llm.complete(REQUEST);
        assert.equal(endpoint.requests.length, 3);
        assert.deepEqual(endpoint.requests[2]?.body.response_format, { type: 'json_object' });
      },
    );
  });

  it('does not step down when the mode is fixed', async () => {
    await withEndpoint(
      [llamaCppPythonRefusal],
      async (llm, endpoint) => {
        // A 500 is transient: retried (2 retries), then thrown; never a fallback.
        await rejectsWith(llm.complete(REQUEST), TransientError, 'LLM_SERVER_ERROR');
        assert.equal(endpoint.requests.length, 3);
        assert.ok(
          endpoint.requests.every((r) => (r.body.response_format as { type: string }).type === 'json_schema'),
        );
      },
      { responseFormat: 'json_schema' },
    );
  });

  it('recognizes refusals by status and message', () => {
    assert.equal(
      isResponseFormatRefusal(parseErrorBody(400, '{"error":{"message":"Invalid response_format"}}')),
      true,
    );
    assert.equal(
      isResponseFormatRefusal(parseErrorBody(400, '{"error":{"message":"messages must not be empty"}}')),
      false,
    );
    assert.equal(isResponseFormatRefusal(parseErrorBody(503, 'json_schema overloaded')), false);
  });
});

describe('openai backend: errors and retries', () => {
  it('classifies HTTP statuses into the three families', () => {
    const cases: [number, string, typeof StarstreamError, string][] = [
      [401, '{"error":{"message":"bad key"}}', FatalError, 'LLM_AUTH'],
      [403, 'forbidden', FatalError, 'LLM_AUTH'],
      [404, '{"error":{"message":"model not found"}}', FatalError, 'LLM_NOT_FOUND'],
      [408, '', TransientError, 'LLM_TIMEOUT'],
      [429, '{"error":{"message":"slow down","type":"rate_limit"}}', TransientError, 'LLM_RATE_LIMITED'],
      [500, 'oops', TransientError, 'LLM_SERVER_ERROR'],
      [503, '<html>busy</html>', TransientError, 'LLM_SERVER_ERROR'],
      [
        400,
        '{"error":{"message":"too long","code":"context_length_exceeded"}}',
        BadInputError,
        'LLM_PROMPT_TOO_LONG',
      ],
      [
        400,
        '{"error":{"message":"This model\'s maximum context length is 2048 tokens"}}',
        BadInputError,
        'LLM_PROMPT_TOO_LONG',
      ],
      [413, 'payload too large', BadInputError, 'LLM_PROMPT_TOO_LONG'],
      [400, '{"error":{"message":"messages: field required"}}', BadInputError, 'LLM_BAD_REQUEST'],
      [422, '{"detail":[{"msg":"value error"}]}', BadInputError, 'LLM_BAD_REQUEST'],
      [302, 'moved', FatalError, 'LLM_PROTOCOL'],
    ];
    for (const [status, body, family, code] of cases) {
      const err = classifyHttpError(parseErrorBody(status, body), 'test');
      assert.ok(err instanceof family, `${status} ${body}: ${err.name}`);
      assert.equal(err.code, code, `${status} ${body}`);
      assert.match(err.message, new RegExp(`HTTP ${status}`));
    }
  });

  it('retries 429 and 5xx with backoff, then succeeds', async () => {
    await withEndpoint(
      [
        { status: 429, body: { error: { message: 'slow down' } } },
        { status: 502, body: 'bad gateway' },
        { body: completionBody('{"ok":1}') },
      ],
      async (llm, endpoint) => {
        assert.equal((await llm.complete(REQUEST)).text, '{"ok":1}');
        assert.equal(endpoint.requests.length, 3);
      },
    );
  });

  it('gives up after the configured retries with the last transient error', async () => {
    await withEndpoint([{ status: 503, body: 'busy' }], async (llm, endpoint) => {
      await rejectsWith(llm.complete(REQUEST), TransientError, 'LLM_SERVER_ERROR');
      assert.equal(endpoint.requests.length, 1 + FAST_RETRY.retries);
    });
  });

  it('never retries fatal and bad-input answers', async () => {
    await withEndpoint(
      [{ status: 401, body: { error: { message: 'invalid api key' } } }],
      async (llm, endpoint) => {
        await rejectsWith(llm.complete(REQUEST), FatalError, 'LLM_AUTH');
        assert.equal(endpoint.requests.length, 1);
      },
    );
    await withEndpoint(
      [{ status: 400, body: { error: { message: 'bad', code: 'context_length_exceeded' } } }],
      async (llm, endpoint) => {
        await rejectsWith(llm.complete(REQUEST), BadInputError, 'LLM_PROMPT_TOO_LONG');
        assert.equal(endpoint.requests.length, 1);
      },
    );
  });

  // Tries are counted on the client's side (its retry warnings): on a loaded machine a try can time out
  // before the in-process server has read it, so the server's count may be lower.
  it('times out a slow try (transient), retries it, and reports LLM_TIMEOUT', async () => {
    const log = retryLog();
    await withEndpoint(
      [{ delayMs: 600_000 }],
      async (llm, endpoint) => {
        await rejectsWith(llm.complete(REQUEST), TransientError, 'LLM_TIMEOUT');
        assert.deepEqual(log.retries(), Array(FAST_RETRY.retries).fill('LLM_TIMEOUT'), 'each try timed out, then was retried');
        assert.ok(endpoint.requests.length <= 1 + FAST_RETRY.retries);
      },
      { timeoutMs: 50, logger: log.logger },
    );
  });

  it("stops at once when the caller's signal aborts, without retrying", async () => {
    const log = retryLog();
    await withEndpoint(
      [{ delayMs: 600_000 }],
      async (llm, endpoint) => {
        const controller = new AbortController();
        const pending = llm.complete({ ...REQUEST, signal: controller.signal });
        setTimeout(() => controller.abort(new Error('case deadline')), 50);
        const err = await rejectsWith(pending, TransientError, 'LLM_ABORTED');
        assert.equal((err.cause as Error).message, 'case deadline');
        assert.deepEqual(log.retries(), [], 'no retry');
        assert.ok(endpoint.requests.length <= 1);
      },
      { logger: log.logger },
    );
    await withEndpoint([{}], async (llm, endpoint) => {
      await rejectsWith(
        llm.complete({ ...REQUEST, signal: AbortSignal.abort() }),
        TransientError,
        'LLM_ABORTED',
      );
      assert.equal(endpoint.requests.length, 0);
    });
  });

  it('reports an unreachable endpoint as transient', async () => {
    const endpoint = await startFakeEndpoint([{}]);
    await endpoint.close();
    const llm = createOpenAiLanguageModel(options(endpoint.baseUrl));
    const err = await rejectsWith(llm.complete(REQUEST), TransientError, 'LLM_UNREACHABLE');
    assert.match(err.message, /ECONNREFUSED/);
    await llm.close();
  });

  it('treats a 200 that is not a chat completion as a protocol error', async () => {
    await withEndpoint([{ body: '<html>welcome to nginx</html>' }], async (llm) => {
      await rejectsWith(llm.complete(REQUEST), FatalError, 'LLM_PROTOCOL');
    });
    await withEndpoint([{ body: { object: 'list', data: [] } }], async (llm) => {
      await rejectsWith(llm.complete(REQUEST), FatalError, 'LLM_PROTOCOL');
    });
  });

  it('reports refusals as bad input', async () => {
    await withEndpoint(
      [
        {
          body: {
            choices: [
              {
                message: { role: 'assistant', content: null, refusal: 'I cannot help' },
                finish_reason: 'stop',
              },
            ],
          },
        },
      ],
      async (llm) => {
        await rejectsWith(llm.complete(REQUEST), BadInputError, 'LLM_REFUSED');
      },
    );
  });

  it('refuses malformed requests before sending them', async () => {
    await withEndpoint([{}], async (llm, endpoint) => {
      await rejectsWith(llm.complete({ ...REQUEST, messages: [] }), BadInputError, 'LLM_BAD_REQUEST');
      await rejectsWith(llm.complete({ ...REQUEST, maxTokens: 0 }), BadInputError, 'LLM_BAD_REQUEST');
      assert.equal(endpoint.requests.length, 0);
    });
  });

  it('close() aborts requests in flight with LLM_CLOSED and refuses later ones; it is idempotent', async () => {
    await withEndpoint([{ delayMs: 5_000 }], async (llm) => {
      const pending = llm.complete(REQUEST);
      await new Promise((r) => setTimeout(r, 30));
      await Promise.all([llm.close(), llm.close()]);
      await rejectsWith(pending, FatalError, 'LLM_CLOSED');
      await rejectsWith(llm.complete(REQUEST), FatalError, 'LLM_CLOSED');
    });
  });
});
