import type { QdrantClient } from '@qdrant/js-client-rest';

/**
 * The point calls the adapter makes on every batch (retrieve, upsert, batch update, query, scroll, count), sent
 * over plain JSON with the global `fetch` (keep-alive; what the client uses too, so the benchmark's and tests'
 * server-time recorder sees these calls). Same paths, parameters, defaults and results as `QdrantClient`'s
 * methods of those names; the collection calls stay on the client.
 *
 * Why not the client for these: it parses every answer with a `JSON.parse` reviver (so integers past 2^53
 * become BigInts) and writes every request with a replacer. A reviver is called for every value of the answer
 * with its source text, which made parsing a 100-item retrieve (co-occurrence lists in the payload, 200 KB)
 * four times slower than `JSON.parse` alone (5.6 → 22 ms on this project's loaded 2-core machine), the
 * largest part of the client's time beside the server's. Every number this project stores is a
 * float or a small count and every point id a UUID, so there is nothing a reviver could save.
 *
 * Errors have the client's shapes, so `classifyQdrantError` reads both: a non-2xx answer is a
 * {@link QdrantHttpError} with `status` and the parsed body as `data`; the timeout aborts with a
 * `TimeoutError`; socket failures are fetch's `TypeError` with the socket error as `cause`.
 */
export type PointCalls = Pick<QdrantClient, 'retrieve' | 'upsert' | 'batchUpdate' | 'query' | 'scroll' | 'count'>;

export interface PointsRestOptions {
  /** Base URL, with the port to use (the adapter resolves a missing port to the scheme's). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

/** A non-2xx answer: `status` and `data` as the client's `ApiError` carries them. */
export class QdrantHttpError extends Error {
  override readonly name = 'QdrantHttpError';
  constructor(
    readonly status: number,
    readonly data: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}

type Args = Record<string, unknown>;

/** Which arguments go into the query string; the rest is the JSON body. */
const QUERY_KEYS = new Set(['wait', 'ordering', 'timeout', 'consistency']);

export class PointsRest implements PointCalls {
  private readonly base: string;
  private readonly headers: Record<string, string>;

  constructor(private readonly options: PointsRestOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.headers = { ...options.headers, 'content-type': 'application/json', accept: 'application/json' };
  }

  retrieve: PointCalls['retrieve'] = (collection, args) =>
    this.call('POST', collection, '', { with_payload: true, ...args }) as ReturnType<PointCalls['retrieve']>;

  upsert: PointCalls['upsert'] = (collection, args) =>
    this.call('PUT', collection, '', { wait: true, ...args }) as ReturnType<PointCalls['upsert']>;

  batchUpdate: PointCalls['batchUpdate'] = (collection, args) =>
    this.call('POST', collection, '/batch', { wait: true, ...args }) as ReturnType<PointCalls['batchUpdate']>;

  query: PointCalls['query'] = (collection, args) =>
    this.call('POST', collection, '/query', { ...args }) as ReturnType<PointCalls['query']>;

  scroll: PointCalls['scroll'] = (collection, args) =>
    this.call('POST', collection, '/scroll', { limit: 10, with_payload: true, with_vector: false, ...args }) as ReturnType<
      PointCalls['scroll']
    >;

  count: PointCalls['count'] = (collection, args) =>
    this.call('POST', collection, '/count', { exact: true, ...args }) as ReturnType<PointCalls['count']>;

  private async call(method: 'POST' | 'PUT', collection: string, suffix: string, args: Args): Promise<unknown> {
    const query = new URLSearchParams();
    const body: Args = {};
    for (const [key, value] of Object.entries(args)) {
      if (value === undefined) continue;
      if (QUERY_KEYS.has(key)) query.set(key, String(value));
      else body[key] = value;
    }
    const path = `/collections/${encodeURIComponent(collection)}/points${suffix}`;
    const search = query.size > 0 ? `?${query.toString()}` : '';
    const answer = await fetch(`${this.base}${path}${search}`, {
      method,
      headers: this.headers,
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.options.timeoutMs),
    });
    const text = await answer.text();
    const parsed = parseOrText(text);
    if (!answer.ok) throw new QdrantHttpError(answer.status, parsed);
    const result = (parsed as { result?: unknown } | null)?.result;
    if (result === undefined) throw new QdrantHttpError(answer.status, `no result in the answer: ${text.slice(0, 200)}`);
    return result;
  }
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
