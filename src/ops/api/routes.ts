import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BadInputError, TransientError, errorCode, errorMessage } from '../../errors/index.ts';
import { NAME_PATTERN } from '../../experiments/definition.ts';
import type { Logger } from '../../logging/logger.ts';
import type { RankedNow } from '../../pipeline/recommend.ts';
import type { RefreshResult } from '../../star/registry/registry.ts';
import { json, type RouteHandler } from '../server.ts';
import type { EventIngest } from './events.ts';

/**
 * The on-demand HTTP API, mounted under `/v1/` on the ops server (docs/openapi.yaml describes it;
 * test/ops/openapi.test.ts checks that the two agree):
 *
 * - `GET  /v1/users/{id}/recommendations?k=&at=` ranks for a user now (evidence at the stream's time, or `at`), through the stream's stages;
 * - `POST /v1/events` takes interactions (one, an array, or `{ "events": [...] }`), checked as ingest checks
 *   what it reads from the log, accepted ones produced to the interactions topic, the others dead-lettered and
 *   answered by index (`events.ts`); the body is bounded (`maxBodyBytes`, `MAX_EVENTS_PER_REQUEST`: 413);
 * - `POST /v1/admin/model/reload` reads the STAR registry's `CURRENT` now;
 * - `POST /v1/admin/consumption/pause` and `/resume` stop and restart fetching (the API keeps answering).
 *
 * HEAD is served on every GET route, as GET without the body (Node drops the body of a HEAD response).
 * `k` above `maxK` is a 400 naming the limit; the answer's `k` is the length of the list it holds: the k asked
 * for, or fewer when the user has fewer candidates than that (`candidates` says how many).
 *
 * Auth: with `ops.apiToken` set, every `/v1/` route wants `Authorization: Bearer <token>` (401 otherwise).
 * Without it the read route is open and the admin routes answer 403: admin needs a token to exist at all.
 * `POST /v1/events` is authorized as an admin route (writing into the stream is no less than pausing it).
 * Errors are JSON `{ "error": { "code", "message" } }` with a 4xx for anything the caller can fix.
 */

export interface ApiDeps {
  /**
   * `atMs`: the time to explain at (default the stream's time); a bad one throws `BadInputError`. `arm`: an
   * online experiment's arm to rank with instead of the user's (admin only; checked here); an unknown one, or
   * no experiment, throws `BadInputError`. The answer's `arm` is the arm that ranked (null: no experiment).
   */
  recommend(userId: string, k: number, atMs?: number, arm?: string): Promise<RankedNow & { readonly arm?: string | null }>;
  /** k when the query does not give one (`ranking.topK`). */
  readonly defaultK: number;
  readonly maxK: number;
  readonly token: string | undefined;
  /** null when no STAR registry serves (the baseline ranker): reload answers 409. */
  readonly reloadModel: (() => Promise<RefreshResult>) | null;
  pause(): void;
  resume(): void;
  isPaused(): boolean;
  /** `POST /v1/events`: checks and produces a batch of JSON records (`events.ts`). */
  readonly ingestEvents: EventIngest;
  /** Largest request body `POST /v1/events` reads. @default {@link DEFAULT_MAX_BODY_BYTES} */
  readonly maxBodyBytes?: number;
  readonly logger: Logger;
  readonly onRequest?: (route: string, method: string, status: number, seconds: number) => void;
}

/** Every route the API serves: method and OpenAPI path template. */
export const API_ROUTES = [
  { method: 'GET', path: '/v1/users/{id}/recommendations', admin: false },
  { method: 'POST', path: '/v1/events', admin: true },
  { method: 'POST', path: '/v1/admin/model/reload', admin: true },
  { method: 'POST', path: '/v1/admin/consumption/pause', admin: true },
  { method: 'POST', path: '/v1/admin/consumption/resume', admin: true },
] as const;

type Route = (typeof API_ROUTES)[number];

export const MAX_USER_ID_LENGTH = 256;

/** 1 MiB: thousands of events per request, and a bound on what one request holds in memory. */
export const DEFAULT_MAX_BODY_BYTES = 1_048_576;
/** Events in one request; the answer lists an error per rejected one, so this bounds the answer too. */
export const MAX_EVENTS_PER_REQUEST = 10_000;

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function createApi(deps: ApiDeps): RouteHandler {
  const log = deps.logger.child({ component: 'api' });
  const expected = deps.token ? Buffer.from(deps.token) : null;

  return async (req, res, url) => {
    const started = performance.now();
    let template = 'unmatched';
    let status = 500;
    try {
      const match = matchRoute(url.pathname);
      if (!match) throw new ApiError(404, 'NOT_FOUND', `no route ${url.pathname.slice(0, 200)}`);
      template = match.path;
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      const route = API_ROUTES.find((r) => r.path === match.path && r.method === method);
      if (!route) {
        const allow = API_ROUTES.filter((r) => r.path === match.path).flatMap((r) => (r.method === 'GET' ? ['GET', 'HEAD'] : [r.method])).join(', ');
        throw new ApiError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${match.path}; use ${allow}`, { allow });
      }
      authorize(req, route, expected);
      status = await serve(route, match.params, url, req, res);
    } catch (err) {
      if (err instanceof ApiError) {
        status = err.status;
        json(res, err.status, { error: { code: err.code, message: err.message } }, err.headers);
      } else if (err instanceof BadInputError) {
        status = 400;
        json(res, 400, { error: { code: err.code, message: err.message } });
      } else if (err instanceof TransientError) {
        // The event log (or the store) did not answer in time: the caller may try again.
        status = 503;
        log.warn({ code: err.code, err: err.message, route: template }, 'API request failed, retriable');
        json(res, 503, { error: { code: err.code, message: err.message } }, { 'retry-after': '1' });
      } else {
        status = 500;
        log.error({ code: errorCode(err), err: errorMessage(err), route: template }, 'API request failed');
        json(res, 500, { error: { code: errorCode(err), message: errorMessage(err) } });
      }
    } finally {
      deps.onRequest?.(template, req.method ?? 'GET', status, (performance.now() - started) / 1000);
    }
  };

  async function serve(route: Route, params: Record<string, string>, url: URL, req: IncomingMessage, res: ServerResponse): Promise<number> {
    switch (route.path) {
      case '/v1/events': {
        const records = eventsOf(await readJson(req, deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES));
        const requestId = randomUUID();
        const result = await deps.ingestEvents(records, requestId);
        if (result.rejected > 0) log.info({ accepted: result.accepted, rejected: result.rejected, code: result.errors[0]?.code, requestId }, 'events rejected');
        if (result.accepted === 0) {
          json(res, 422, { ...result, error: { code: 'EVENTS_REJECTED', message: `every event was rejected (${result.rejected}); see errors` } });
          return 422;
        }
        json(res, 202, result);
        return 202;
      }
      case '/v1/users/{id}/recommendations': {
        const userId = parseUserId(params.id ?? '');
        const k = parseK(url.searchParams, deps.defaultK, deps.maxK);
        const arm = parseArm(url.searchParams, expected !== null);
        const ranked = await deps.recommend(userId, k, parseAt(url.searchParams), arm);
        json(res, 200, {
          userId,
          k: ranked.ranked.length,
          modelVersion: ranked.modelVersion,
          arm: ranked.arm ?? null,
          coldStart: ranked.coldStart,
          candidates: ranked.candidates,
          generatedAtMs: Date.now(),
          items: ranked.ranked.map((r) => ({
            itemId: r.evidence.itemId,
            title: r.evidence.title,
            score: r.score,
            sources: r.evidence.sources,
            evidence: r.evidence.sentences,
          })),
        });
        return 200;
      }
      case '/v1/admin/model/reload': {
        if (!deps.reloadModel) throw new ApiError(409, 'NO_MODEL_REGISTRY', 'the baseline ranker serves: set ranking.scorer=star and ranking.modelDir');
        const result = await deps.reloadModel();
        log.info({ status: result.status, model: result.version }, 'model reload requested');
        if (result.status === 'refused') {
          json(res, 422, { status: result.status, version: result.version, error: { code: result.code, message: result.message } });
          return 422;
        }
        json(res, 200, { status: result.status, version: result.version });
        return 200;
      }
      case '/v1/admin/consumption/pause':
        deps.pause();
        log.info({}, 'consumption paused by the API');
        json(res, 200, { paused: deps.isPaused() });
        return 200;
      case '/v1/admin/consumption/resume':
        deps.resume();
        log.info({}, 'consumption resumed by the API');
        json(res, 200, { paused: deps.isPaused() });
        return 200;
    }
  }
}

/**
 * The request body as JSON, at most `maxBytes` (413 `PAYLOAD_TOO_LARGE`, before reading when Content-Length
 * says so). Any Content-Type is read as JSON (`curl -d` sends a form type); not JSON is a 400 `INVALID_JSON`.
 */
async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const tooLarge = (): ApiError => new ApiError(413, 'PAYLOAD_TOO_LARGE', `the body is over ${maxBytes} bytes; send the events in smaller batches`, { connection: 'close' });
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Stops reading; `connection: close` ends the socket after the answer, so the rest is never read.
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, 'INVALID_JSON', text.trim() === '' ? 'the body is empty; send an event as JSON' : `the body is not JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}

/** One event (an object), an array of events, or `{ "events": [...] }`. */
function eventsOf(body: unknown): readonly unknown[] {
  let records: readonly unknown[];
  if (Array.isArray(body)) records = body;
  else if (typeof body === 'object' && body !== null && Object.hasOwn(body, 'events')) {
    const events = (body as { events: unknown }).events;
    if (!Array.isArray(events)) throw new ApiError(400, 'INVALID_BODY', '"events" must be an array of events');
    records = events;
  } else if (typeof body === 'object' && body !== null) records = [body];
  else throw new ApiError(400, 'INVALID_BODY', 'the body must be an event object, an array of events or {"events": [...]}');
  if (records.length === 0) throw new ApiError(400, 'EMPTY_BATCH', 'no events in the body');
  if (records.length > MAX_EVENTS_PER_REQUEST) {
    throw new ApiError(413, 'TOO_MANY_EVENTS', `${records.length} events in one request; at most ${MAX_EVENTS_PER_REQUEST}`);
  }
  return records;
}

function matchRoute(pathname: string): { path: Route['path']; params: Record<string, string> } | null {
  // `[^/]*`: an empty id (`/v1/users//recommendations`) is a bad id (400), not an unknown route.
  const user = /^\/v1\/users\/([^/]*)\/recommendations\/?$/.exec(pathname);
  if (user) return { path: '/v1/users/{id}/recommendations', params: { id: user[1]! } };
  const plain = API_ROUTES.find((r) => r.path === pathname.replace(/\/$/, ''));
  return plain ? { path: plain.path, params: {} } : null;
}

function authorize(req: IncomingMessage, route: Route, expected: Buffer | null): void {
  if (!expected) {
    if (route.admin) throw new ApiError(403, 'ADMIN_DISABLED', 'admin routes need ops.apiToken to be set');
    return;
  }
  const header = req.headers.authorization ?? '';
  const given = /^Bearer (.+)$/i.exec(header)?.[1];
  // Lengths compared in bytes: a header of the token's length in characters but not in UTF-8 bytes (`é`) made
  // timingSafeEqual throw, a 500.
  const bytes = given === undefined ? null : Buffer.from(given);
  const ok = bytes !== null && bytes.length === expected.length && timingSafeEqual(bytes, expected);
  if (!ok) {
    throw new ApiError(401, 'UNAUTHORIZED', given === undefined ? 'missing bearer token' : 'wrong bearer token', {
      'www-authenticate': 'Bearer realm="starstream"',
    });
  }
}

function parseUserId(raw: string): string {
  let id: string;
  try {
    id = decodeURIComponent(raw);
  } catch {
    throw new ApiError(400, 'INVALID_USER_ID', 'user id is not valid percent-encoding');
  }
  if (id.length === 0 || id.length > MAX_USER_ID_LENGTH) {
    throw new ApiError(400, 'INVALID_USER_ID', `user id must be 1 to ${MAX_USER_ID_LENGTH} characters`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) throw new ApiError(400, 'INVALID_USER_ID', 'user id must not contain control characters');
  return id;
}

/**
 * `arm`: an experiment arm override (QA), or undefined. Admin only: with `ops.apiToken` set every `/v1/` request
 * has already shown it; without one, the override is refused like the admin routes (403).
 */
function parseArm(params: URLSearchParams, admin: boolean): string | undefined {
  const all = params.getAll('arm');
  if (all.length === 0) return undefined;
  if (!admin) throw new ApiError(403, 'ADMIN_DISABLED', 'an arm override needs ops.apiToken to be set (admin)');
  if (all.length > 1) throw new ApiError(400, 'INVALID_ARM', 'arm given more than once');
  const arm = all[0]!;
  if (!NAME_PATTERN.test(arm)) throw new ApiError(400, 'INVALID_ARM', `arm must be an arm name, got "${arm.slice(0, 70)}"`);
  return arm;
}

/** `at`: epoch milliseconds to explain at, or undefined for the stream's time. */
function parseAt(params: URLSearchParams): number | undefined {
  const all = params.getAll('at');
  if (all.length === 0) return undefined;
  if (all.length > 1) throw new ApiError(400, 'INVALID_AT', 'at given more than once');
  const text = all[0]!;
  if (!/^[0-9]{1,15}$/.test(text)) throw new ApiError(400, 'INVALID_AT', `at must be epoch milliseconds, got "${text.slice(0, 20)}"`);
  return Number(text);
}

function parseK(params: URLSearchParams, defaultK: number, maxK: number): number {
  for (const name of params.keys()) {
    if (name !== 'k' && name !== 'at' && name !== 'arm') {
      throw new ApiError(400, 'UNKNOWN_PARAMETER', `unknown query parameter "${name.slice(0, 40)}"; only k, at and arm are accepted`);
    }
  }
  const all = params.getAll('k');
  if (all.length === 0) return defaultK;
  if (all.length > 1) throw new ApiError(400, 'INVALID_K', 'k given more than once');
  const text = all[0]!;
  if (!/^[0-9]{1,7}$/.test(text)) throw new ApiError(400, 'INVALID_K', `k must be a whole number from 1 to ${maxK}, got "${text.slice(0, 20)}"`);
  const k = Number(text);
  if (k < 1 || k > maxK) throw new ApiError(400, 'INVALID_K', `k must be from 1 to ${maxK}, got ${k}`);
  return k;
}
