/**
 * The teacher's language model, behind one port so the agents never know which backend answers: an
 * OpenAI-compatible chat endpoint (openai/) or a local GGUF file through node-llama-cpp (llama/).
 *
 * Every agent turn asks for one JSON value that matches a JSON Schema. Tools are called through that same
 * channel (an agent answers `{"action":"call_tool",...}`), so the protocol does not depend on a backend's
 * native tool-calling support: llama.cpp enforces the schema with a grammar, OpenAI-compatible servers with
 * `response_format: json_schema`. The agents still validate every answer: a backend may ignore the schema.
 */

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  readonly role: ChatRole;
  readonly content: string;
}

/** A JSON Schema (draft 2020-12 subset: object, array, string, number, integer, boolean, enum, const). */
export type JsonSchema = Readonly<Record<string, unknown>>;

export interface CompletionRequest {
  readonly messages: readonly ChatMessage[];
  /** The answer must be one JSON value matching this schema. */
  readonly schema: JsonSchema;
  /** Name of the schema, for backends that want one (OpenAI's `json_schema.name`). */
  readonly schemaName: string;
  readonly maxTokens: number;
  /** 0 for deterministic answers (the default). */
  readonly temperature?: number;
  /** Aborts the request: the per-case wall-time limit. */
  readonly signal?: AbortSignal;
}

export interface Completion {
  /** The raw answer text; the caller parses and validates it. */
  readonly text: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Wall time of the call, from `complete()` to its answer (queueing and retries included), ms. */
  readonly ms: number;
  /**
   * Why generation stopped, where the backend says: `stop` = the answer is complete, `length` = it was cut at
   * `maxTokens` (the text is then most likely not valid JSON). Optional: a backend may not know.
   */
  readonly finishReason?: 'stop' | 'length';
}

export interface LanguageModel {
  /** `openai` or `llama`. */
  readonly backend: string;
  /** The model's name as the backend reports it (recorded in every trajectory). */
  readonly model: string;
  /**
   * One completion. Throws a TransientError for timeouts, 429 and 5xx (the caller may retry), a FatalError for
   * auth or config problems, a BadInputError when the request itself is refused (e.g. the prompt is too long).
   * The `code` of each is one of `LLM_ERROR_CODES`. When `request.signal` aborts, the call rejects with a
   * TransientError of code `LLM_ABORTED` whose `cause` is the signal's reason.
   */
  complete(request: CompletionRequest): Promise<Completion>;
  close(): Promise<void>;
}

/**
 * The stable `code`s of the errors a `LanguageModel` throws (metric labels, trajectory failure reasons).
 * Family per code: TIMEOUT, ABORTED, UNREACHABLE, RATE_LIMITED, SERVER_ERROR are transient; BAD_REQUEST,
 * PROMPT_TOO_LONG, SCHEMA_UNSUPPORTED, REFUSED are bad input; AUTH, NOT_FOUND, PROTOCOL, MODEL_MISSING,
 * MODEL_LOAD, CLOSED, FAILED are fatal.
 */
export const LLM_ERROR_CODES = {
  /** The backend's own per-request timeout (`teacher.llm.timeoutMs`) ran out. */
  timeout: 'LLM_TIMEOUT',
  /** The caller's `signal` aborted the request. Retrying cannot help the caller whose deadline passed. */
  aborted: 'LLM_ABORTED',
  /** No connection to the endpoint (refused, reset, DNS). */
  unreachable: 'LLM_UNREACHABLE',
  /** HTTP 429. */
  rateLimited: 'LLM_RATE_LIMITED',
  /** HTTP 5xx (and 408, 409, 425). */
  serverError: 'LLM_SERVER_ERROR',
  /** The request was refused as malformed (HTTP 400 / 422 and other 4xx). */
  badRequest: 'LLM_BAD_REQUEST',
  /** Prompt plus `maxTokens` do not fit the model's context (HTTP 413, or a 400 that says so). */
  promptTooLong: 'LLM_PROMPT_TOO_LONG',
  /** The backend cannot enforce this JSON Schema. */
  schemaUnsupported: 'LLM_SCHEMA_UNSUPPORTED',
  /** The model refused to answer (OpenAI's `refusal`, or a `content_filter` stop). */
  refused: 'LLM_REFUSED',
  /** HTTP 401 / 403: the API key is missing or wrong. */
  auth: 'LLM_AUTH',
  /** HTTP 404: wrong base URL or model name. */
  notFound: 'LLM_NOT_FOUND',
  /** The endpoint answered something that is not an OpenAI chat completion. */
  protocol: 'LLM_PROTOCOL',
  /** The embedded backend's GGUF file is not there. */
  modelMissing: 'LLM_MODEL_MISSING',
  /** The embedded backend could not load its runtime or model. */
  modelLoad: 'LLM_MODEL_LOAD',
  /** `complete()` after (or during) `close()`. */
  closed: 'LLM_CLOSED',
  /** Anything else the backend threw; not retriable. */
  failed: 'LLM_FAILED',
} as const;

export type LlmErrorCode = (typeof LLM_ERROR_CODES)[keyof typeof LLM_ERROR_CODES];
