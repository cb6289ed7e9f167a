import { FatalError, StarstreamError, TransientError } from '../../errors/index.ts';

/**
 * Turns what `@qdrant/js-client-rest` and `PointsRest` throw into the project's error families. The client throws:
 *
 * - `ApiError` (from `@qdrant/openapi-typescript-fetch`) for a non-2xx response, with `status` and `data`
 *   (`{ status: { error } }`): matched by shape, not by class, as the fetch package ships two builds;
 * - `QdrantHttpError` (`points-rest.ts`, the point calls) for a non-2xx answer, with the same `status` and `data`;
 * - `QdrantClientResourceExhaustedError` for a 429 with `Retry-After`;
 * - `QdrantClientTimeoutError` when the client-side timeout (`store.qdrant.timeoutMs`) aborts the request;
 * - `QdrantClientUnexpectedResponseError` for a 2xx other than 200/201 (status only in the message);
 * - `QdrantClientConfigError` for a bad URL;
 * - undici's `TypeError('fetch failed')` with the socket error (`ECONNREFUSED`, …) as `cause`.
 *
 * Codes (stable, safe as metric labels):
 *
 * | condition | family | code |
 * |---|---|---|
 * | timeout (client abort, 408, 504) | transient | `STORE_TIMEOUT` |
 * | 429 | transient | `STORE_RATE_LIMITED` |
 * | other 5xx, connection refused/reset, DNS not (yet) resolvable | transient | `STORE_UNAVAILABLE` |
 * | 401, 403 | fatal | `STORE_AUTH` |
 * | 404 | fatal | `STORE_NOT_FOUND` (a collection is missing: run `starstream store init`) |
 * | 400, 409, 422, other 4xx | fatal | `STORE_REQUEST_REJECTED` (request and collection schema disagree) |
 * | bad client config | fatal | `STORE_CONFIG` |
 * | anything else | fatal | `STORE_UNEXPECTED` |
 */

const TRANSIENT_SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** `op` and `target` (collection) name the call in the message; the message never holds the API key. */
export function classifyQdrantError(err: unknown, op: string, target: string): StarstreamError {
  if (err instanceof StarstreamError) return err;
  const where = `qdrant ${op} ${target}`;
  const name = err instanceof Error ? err.name : '';

  if (name === 'QdrantClientTimeoutError' || name === 'AbortError' || name === 'TimeoutError') {
    return new TransientError('STORE_TIMEOUT', `${where}: request timed out`, { cause: err });
  }
  if (name === 'QdrantClientResourceExhaustedError') {
    return new TransientError('STORE_RATE_LIMITED', `${where}: rate limited (429)`, { cause: err });
  }
  if (name === 'QdrantClientConfigError') {
    return new FatalError('STORE_CONFIG', `${where}: ${(err as Error).message}`, { cause: err });
  }

  const status = httpStatus(err);
  if (status !== undefined) return fromStatus(status, `${where}: HTTP ${status}${detail(err)}`, err);

  const socketCode = socketErrorCode(err);
  if (socketCode !== undefined) {
    if (socketCode.includes('TIMEOUT')) {
      return new TransientError('STORE_TIMEOUT', `${where}: ${socketCode}`, { cause: err });
    }
    return new TransientError('STORE_UNAVAILABLE', `${where}: ${socketCode}`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new FatalError('STORE_UNEXPECTED', `${where}: ${message}`, { cause: err });
}

function fromStatus(status: number, message: string, cause: unknown): StarstreamError {
  if (status === 408 || status === 504) return new TransientError('STORE_TIMEOUT', message, { cause });
  if (status === 429) return new TransientError('STORE_RATE_LIMITED', message, { cause });
  if (status >= 500) return new TransientError('STORE_UNAVAILABLE', message, { cause });
  if (status === 401 || status === 403) return new FatalError('STORE_AUTH', message, { cause });
  if (status === 404) return new FatalError('STORE_NOT_FOUND', message, { cause });
  if (status >= 400) return new FatalError('STORE_REQUEST_REJECTED', message, { cause });
  return new FatalError('STORE_UNEXPECTED', message, { cause });
}

/** `status` of an `ApiError`, or the status in a `QdrantClientUnexpectedResponseError`'s message. */
export function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number' && Number.isInteger(status)) return status;
  if (err instanceof Error && err.name === 'QdrantClientUnexpectedResponseError') {
    const match = /Unexpected Response: (\d{3})/.exec(err.message);
    if (match) return Number(match[1]);
  }
  return undefined;
}

/** Qdrant's own explanation (`data.status.error`), shortened; empty when there is none. */
function detail(err: unknown): string {
  const data = (err as { data?: unknown }).data;
  const text =
    typeof data === 'object' && data !== null
      ? (data as { status?: { error?: unknown } }).status?.error
      : typeof data === 'string'
        ? data
        : undefined;
  if (typeof text !== 'string' || text.length === 0) return '';
  return `: ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`;
}

/** The first socket-level error code in the `cause` chain, if it is one that a retry can cure. */
function socketErrorCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_SOCKET_CODES.has(code)) return code;
    const errors = (current as { errors?: unknown }).errors;
    if (Array.isArray(errors)) {
      for (const inner of errors) {
        const innerCode = socketErrorCode(inner);
        if (innerCode) return innerCode;
      }
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
