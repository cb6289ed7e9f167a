import { performance } from 'node:perf_hooks';
import {
  BadInputError,
  errorMessage,
  FatalError,
  isRetriable,
  StarstreamError,
  TransientError,
} from '../../../errors/index.ts';
import type { Logger } from '../../../logging/logger.ts';
import { withRetry, type RetryPolicy } from '../../../util/retry.ts';
import { InFlightRequests, requestDeadline } from '../deadline.ts';
import { LLM_ERROR_CODES, type Completion, type CompletionRequest, type LanguageModel } from '../port.ts';
import { classifyHttpError, isResponseFormatRefusal, parseErrorBody } from './errors.ts';
import { chatCompletionBody, RESPONSE_FORMAT_MODES, type ResponseFormatMode } from './request.ts';

/**
 * The teacher's LLM over any OpenAI-compatible chat endpoint (`POST {baseUrl}/chat/completions`), with Node's
 * fetch. The answer's schema goes in `response_format` (see `ResponseFormatMode`); with `responseFormat: auto`
 * the backend starts with `json_schema` and, when a server refuses that field, steps down to
 * `json_object_schema` and then `json_object`, once per instance (logged), so one config fits vLLM, Ollama,
 * llama-server, llama-cpp-python and hosted APIs.
 *
 * Each try has its own timeout (`timeoutMs`); timeouts, connection failures, 429 and 5xx are retried with
 * backoff and jitter (`retry`); the caller's signal bounds the whole call, retries and waits included.
 * Requests in flight are independent (no shared state but the sticky response-format mode), so concurrency is
 * the caller's to bound.
 */

export interface OpenAiBackendOptions {
  /** Up to and including the version path, e.g. `http://127.0.0.1:8080/v1`. */
  readonly baseUrl: string;
  readonly model: string;
  /** Sent as `Authorization: Bearer …` when set. */
  readonly apiKey?: string | undefined;
  /** Per try, ms. */
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  readonly responseFormat: 'auto' | ResponseFormatMode;
  readonly strictSchema: boolean;
  /** Used when a request has no `temperature`. */
  readonly temperature: number;
  readonly logger: Logger;
}

export function createOpenAiLanguageModel(options: OpenAiBackendOptions): LanguageModel {
  return new OpenAiLanguageModel(options);
}

class OpenAiLanguageModel implements LanguageModel {
  readonly backend = 'openai';
  readonly model: string;
  private readonly url: string;
  private mode: ResponseFormatMode;
  private readonly closing = new AbortController();
  private readonly inFlight = new InFlightRequests();
  private closed: Promise<void> | null = null;

  constructor(private readonly options: OpenAiBackendOptions) {
    this.model = options.model;
    this.url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    this.mode = options.responseFormat === 'auto' ? 'json_schema' : options.responseFormat;
  }

  /** The response-format mode the next request uses (it changes only under `responseFormat: auto`). */
  get responseFormatMode(): ResponseFormatMode {
    return this.mode;
  }

  complete(request: CompletionRequest): Promise<Completion> {
    return this.inFlight.track(this.run(request));
  }

  private async run(request: CompletionRequest): Promise<Completion> {
    const started = performance.now();
    if (this.closed)
      throw new FatalError(LLM_ERROR_CODES.closed, 'openai completion: the language model was closed');
    validateRequest(request);
    const answer = await withRetry(() => this.attempt(request), this.options.retry, {
      signal: request.signal,
      // An aborted caller or a closed model gains nothing from another try.
      shouldRetry: (err) =>
        isRetriable(err) && !(err instanceof StarstreamError && err.code === LLM_ERROR_CODES.aborted),
      onRetry: (err, attempt, delayMs) =>
        this.options.logger.warn(
          {
            code: err instanceof StarstreamError ? err.code : 'UNCLASSIFIED',
            attempt,
            delayMs,
            err: errorMessage(err),
          },
          'teacher llm: retrying the endpoint',
        ),
    });
    return { ...answer, ms: Math.round(performance.now() - started) };
  }

  /** One POST; steps down the response format (auto mode) when the server refuses it. */
  private async attempt(request: CompletionRequest): Promise<Omit<Completion, 'ms'>> {
    const mode = this.mode;
    const body = chatCompletionBody(request, {
      model: this.options.model,
      mode,
      strict: this.options.strictSchema,
      temperature: this.options.temperature,
    });
    const deadline = requestDeadline({
      caller: request.signal,
      timeoutMs: this.options.timeoutMs,
      closing: this.closing.signal,
    });
    let status: number;
    let text: string;
    try {
      const response = await fetch(this.url, {
        method: 'POST',
        headers: this.headers(),
        body: JSON.stringify(body),
        signal: deadline.signal,
      });
      status = response.status;
      text = await response.text();
    } catch (err) {
      if (deadline.cause() !== null) throw deadline.error(`openai completion (${this.url})`);
      throw new TransientError(
        LLM_ERROR_CODES.unreachable,
        `openai completion: cannot reach ${this.url}: ${fetchFailure(err)}`,
        {
          cause: err,
        },
      );
    } finally {
      deadline.dispose();
    }
    if (status < 200 || status >= 300) {
      const error = parseErrorBody(status, text);
      const next = RESPONSE_FORMAT_MODES[RESPONSE_FORMAT_MODES.indexOf(mode) + 1];
      if (this.options.responseFormat === 'auto' && next && isResponseFormatRefusal(error)) {
        // Another request may have stepped down already; only step from the mode this one used.
        if (this.mode === mode) this.mode = next;
        this.options.logger.warn(
          { url: this.url, status, refused: mode, next: this.mode, reason: error.message },
          'teacher llm: the endpoint refused this response_format; using the next one from now on',
        );
        return this.attempt(request);
      }
      throw classifyHttpError(error, `openai completion (${this.url}, response_format ${mode})`);
    }
    return parseCompletion(text, this.url);
  }

  private headers(): Record<string, string> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
    };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    return headers;
  }

  /** Aborts requests in flight (they reject with `LLM_CLOSED`) and waits for them to settle. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing.abort(
        new FatalError(LLM_ERROR_CODES.closed, 'openai completion: the language model was closed'),
      );
      await this.inFlight.settled();
    })();
    return this.closed;
  }
}

interface ChatCompletionResponse {
  choices?: { message?: { content?: unknown; refusal?: unknown }; finish_reason?: unknown }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
}

/** The answer of a 2xx response; anything that is not a chat completion is a protocol error (wrong URL). */
export function parseCompletion(text: string, url: string): Omit<Completion, 'ms'> {
  let parsed: ChatCompletionResponse;
  try {
    parsed = JSON.parse(text) as ChatCompletionResponse;
  } catch (cause) {
    throw new FatalError(
      LLM_ERROR_CODES.protocol,
      `openai completion: ${url} answered with non-JSON: ${text.slice(0, 200)}`,
      { cause },
    );
  }
  const choice = Array.isArray(parsed?.choices) ? parsed.choices[0] : undefined;
  const message = choice?.message;
  if (!message) {
    throw new FatalError(
      LLM_ERROR_CODES.protocol,
      `openai completion: ${url} answered without choices[0].message: ${text.slice(0, 200)}`,
    );
  }
  if (typeof message.refusal === 'string' && message.refusal) {
    throw new BadInputError(
      LLM_ERROR_CODES.refused,
      `openai completion: the model refused: ${message.refusal.slice(0, 200)}`,
    );
  }
  if (choice.finish_reason === 'content_filter') {
    throw new BadInputError(
      LLM_ERROR_CODES.refused,
      'openai completion: the answer was stopped by a content filter',
    );
  }
  if (typeof message.content !== 'string') {
    throw new FatalError(
      LLM_ERROR_CODES.protocol,
      `openai completion: ${url} answered without text content: ${text.slice(0, 200)}`,
    );
  }
  const usage = parsed.usage;
  return {
    text: message.content,
    // 0 where the server reports no usage.
    promptTokens: typeof usage?.prompt_tokens === 'number' ? usage.prompt_tokens : 0,
    completionTokens: typeof usage?.completion_tokens === 'number' ? usage.completion_tokens : 0,
    finishReason: choice.finish_reason === 'length' ? 'length' : 'stop',
  };
}

function validateRequest(request: CompletionRequest): void {
  const bad = (what: string): never => {
    throw new BadInputError(LLM_ERROR_CODES.badRequest, `openai completion: ${what}`);
  };
  if (request.messages.length === 0) bad('no messages');
  if (!Number.isInteger(request.maxTokens) || request.maxTokens <= 0) bad(`maxTokens ${request.maxTokens}`);
  const t = request.temperature;
  if (t !== undefined && !(t >= 0)) bad(`temperature ${t}`);
}

/** undici's "fetch failed" hides the reason in `cause` (ECONNREFUSED, ENOTFOUND, …). */
function fetchFailure(err: unknown): string {
  const cause =
    err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const detail = cause ? [cause.code, cause.message].filter((x) => typeof x === 'string').join(' ') : '';
  return detail ? `${errorMessage(err)} (${detail})` : errorMessage(err);
}
