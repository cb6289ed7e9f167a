import { BadInputError, FatalError, TransientError, type StarstreamError } from '../../../errors/index.ts';
import { LLM_ERROR_CODES } from '../port.ts';

/**
 * Classification of an OpenAI-compatible endpoint's failures into the error families. The rule for what is
 * not listed: a status nobody classified is not retried (a 4xx is the request's fault, anything else fatal).
 */

export interface EndpointError {
  readonly status: number;
  /** `error.message` of an OpenAI error body, else the body's first characters. */
  readonly message: string;
  /** `error.code` (or `error.type`) of an OpenAI error body, when present. */
  readonly code: string | null;
}

const MAX_MESSAGE_CHARS = 500;

/** Reads an error response body: OpenAI's `{error:{message,code,type}}`, FastAPI's `{detail}`, or text. */
export function parseErrorBody(status: number, body: string): EndpointError {
  try {
    const parsed = JSON.parse(body) as { error?: unknown; detail?: unknown; message?: unknown };
    const error = parsed.error;
    if (error && typeof error === 'object') {
      const e = error as { message?: unknown; code?: unknown; type?: unknown };
      const code = typeof e.code === 'string' ? e.code : typeof e.type === 'string' ? e.type : null;
      return { status, message: clip(String(e.message ?? body)), code };
    }
    if (typeof error === 'string') return { status, message: clip(error), code: null };
    if (parsed.detail !== undefined)
      return { status, message: clip(JSON.stringify(parsed.detail)), code: null };
    if (typeof parsed.message === 'string') return { status, message: clip(parsed.message), code: null };
  } catch {
    // Not JSON (a proxy's HTML page, plain text): the text itself is the message.
  }
  return { status, message: clip(body.trim() || '(empty body)'), code: null };
}

/** The error to throw for a non-2xx answer. */
export function classifyHttpError(error: EndpointError, what: string): StarstreamError {
  const { status, message, code } = error;
  const text = `${what}: HTTP ${status}${code ? ` ${code}` : ''}: ${message}`;
  if (status === 401 || status === 403) return new FatalError(LLM_ERROR_CODES.auth, text);
  if (status === 404) return new FatalError(LLM_ERROR_CODES.notFound, text);
  if (status === 429) return new TransientError(LLM_ERROR_CODES.rateLimited, text);
  if (status === 408) return new TransientError(LLM_ERROR_CODES.timeout, text);
  if (status === 409 || status === 425 || status >= 500)
    return new TransientError(LLM_ERROR_CODES.serverError, text);
  if (status === 413 || isContextLengthError(error))
    return new BadInputError(LLM_ERROR_CODES.promptTooLong, text);
  if (status >= 400 && status < 500) return new BadInputError(LLM_ERROR_CODES.badRequest, text);
  return new FatalError(LLM_ERROR_CODES.protocol, text);
}

function isContextLengthError(error: EndpointError): boolean {
  return (
    error.code === 'context_length_exceeded' ||
    /context length|context window|too many tokens|maximum context/i.test(error.message)
  );
}

/**
 * True when the server refused the request because of its `response_format` (it does not know `json_schema`,
 * or the json_object `schema` field). Servers say so with 400 or 422 (validation) and some with 500
 * (llama-cpp-python wraps its validation error in a 500); the message names the field either way.
 */
export function isResponseFormatRefusal(error: EndpointError): boolean {
  const { status, message } = error;
  return (
    (status === 400 || status === 422 || status === 500) &&
    /response_format|json_schema|json_object/i.test(message)
  );
}

function clip(text: string): string {
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text;
}
