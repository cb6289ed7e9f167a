import type { ChatMessage, CompletionRequest } from '../port.ts';

/**
 * How the answer's JSON Schema is sent to an OpenAI-compatible server:
 * - `json_schema`: OpenAI structured outputs, `{type:'json_schema', json_schema:{name, schema, strict}}`
 *   (OpenAI, vLLM, Ollama, llama.cpp's llama-server, most hosted APIs).
 * - `json_object_schema`: `{type:'json_object', schema}`, llama-cpp-python's server, which refuses
 *   `json_schema` but turns this `schema` into a grammar.
 * - `json_object`: plain JSON mode, `{type:'json_object'}`; the server enforces JSON but not the schema.
 * In both json_object forms the schema is also written into the system prompt (OpenAI's JSON mode requires the
 * word JSON in the messages, and the model has to learn the shape from somewhere).
 */
export const RESPONSE_FORMAT_MODES = ['json_schema', 'json_object_schema', 'json_object'] as const;
export type ResponseFormatMode = (typeof RESPONSE_FORMAT_MODES)[number];

export interface BodyOptions {
  readonly model: string;
  readonly mode: ResponseFormatMode;
  /** `strict` of json_schema mode: the server must follow the schema exactly (OpenAI needs every property required). */
  readonly strict: boolean;
  /** Used when the request has no `temperature`. */
  readonly temperature: number;
}

/** The body of `POST {baseUrl}/chat/completions` for one request. */
export function chatCompletionBody(
  request: CompletionRequest,
  options: BodyOptions,
): Record<string, unknown> {
  const { schema, schemaName } = request;
  let responseFormat: Record<string, unknown>;
  let messages: readonly ChatMessage[] = request.messages;
  switch (options.mode) {
    case 'json_schema':
      responseFormat = {
        type: 'json_schema',
        json_schema: { name: schemaNameForApi(schemaName), schema, strict: options.strict },
      };
      break;
    case 'json_object_schema':
      responseFormat = { type: 'json_object', schema: withoutLengthLimits(schema) };
      messages = withSchemaInstruction(messages, request);
      break;
    case 'json_object':
      responseFormat = { type: 'json_object' };
      messages = withSchemaInstruction(messages, request);
      break;
  }
  return {
    model: options.model,
    messages: messages.map((m) => ({ role: m.role, content: m.content })),
    max_tokens: request.maxTokens,
    temperature: request.temperature ?? options.temperature,
    response_format: responseFormat,
    stream: false,
  };
}

/** OpenAI's `json_schema.name`: letters, digits, `_` and `-`, at most 64 characters. */
export function schemaNameForApi(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  return cleaned || 'answer';
}

/** Appends the schema to the first system message, or puts a system message first. */
function withSchemaInstruction(messages: readonly ChatMessage[], request: CompletionRequest): ChatMessage[] {
  const instruction = `Answer with one JSON value that matches this JSON Schema (${request.schemaName}):\n${JSON.stringify(request.schema)}`;
  const at = messages.findIndex((m) => m.role === 'system');
  if (at < 0) return [{ role: 'system', content: instruction }, ...messages];
  return messages.map((m, i) => (i === at ? { role: m.role, content: `${m.content}\n\n${instruction}` } : m));
}

/**
 * The schema for llama-cpp-python's grammar converter without positive `maxLength`s: it unrolls a length
 * limit into one nested rule per character and refuses a few hundred ("exceeds sane defaults"), failing the
 * request (small `minLength`s and `maxLength: 0` convert fine). The lengths stay in the prompt's copy of the schema and the agents validate every answer anyway.
 */
export function withoutLengthLimits(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutLengthLimits);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'maxLength' && typeof value === 'number' && value > 0) continue;
    out[key] = withoutLengthLimits(value);
  }
  return out;
}
