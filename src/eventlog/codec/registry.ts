import { BadInputError, FatalError, TransientError, errorMessage } from '../../errors/index.ts';

/**
 * A small Confluent schema registry client: register a subject's schema (get its id) and look a schema up by
 * id, both cached for the life of the client (ids are immutable in a registry). Failed calls are not cached.
 *
 * Errors: an unknown id is `BadInputError` `UNKNOWN_SCHEMA` (the record cannot be read, it goes to the DLQ);
 * a registry that is down or answers 5xx is `TransientError` `SCHEMA_REGISTRY_UNAVAILABLE`; refused
 * credentials, an incompatible or invalid schema are `FatalError` (a deployment problem, not a record's).
 */
export interface SchemaRegistryClient {
  /** The id the registry gives `schema` (Avro JSON) under `subject`, registering it if it is new there. */
  register(subject: string, schema: string): Promise<number>;
  /** The Avro JSON of schema `id`. */
  schemaById(id: number): Promise<string>;
}

export interface SchemaRegistryOptions {
  /** Base URL; `user:password@` in it becomes HTTP basic authentication. */
  readonly url: string;
  readonly timeoutMs: number;
  /** For tests; defaults to the global fetch. */
  readonly fetch?: typeof fetch;
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

export function createSchemaRegistryClient(options: SchemaRegistryOptions): SchemaRegistryClient {
  const doFetch = options.fetch ?? fetch;
  const url = new URL(options.url);
  const headers: Record<string, string> = { accept: CONTENT_TYPE, 'content-type': CONTENT_TYPE };
  if (url.username) {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  const base = url.toString().replace(/\/+$/, '');
  const ids = new Map<string, Promise<number>>();
  const schemas = new Map<number, Promise<string>>();

  async function call(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
  ): Promise<Record<string, unknown>> {
    let response: Response;
    try {
      response = await doFetch(`${base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(options.timeoutMs),
      });
    } catch (cause) {
      throw new TransientError(
        'SCHEMA_REGISTRY_UNAVAILABLE',
        `schema registry ${method} ${path}: ${errorMessage(cause)}`,
        { cause },
      );
    }
    const text = await response.text().catch(() => '');
    let json: Record<string, unknown> = {};
    try {
      const parsed: unknown = text ? JSON.parse(text) : {};
      // Only an object is an answer; `null`, a number or an array is read as an empty one (and refused below).
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
    } catch {
      // not JSON: reported with the status below
    }
    if (response.ok) return json;
    const detail = `schema registry ${method} ${path}: HTTP ${response.status} ${String(json.message ?? text).slice(0, 200)}`;
    if (response.status === 404) throw new BadInputError('UNKNOWN_SCHEMA', detail);
    if (response.status === 401 || response.status === 403)
      throw new FatalError('SCHEMA_REGISTRY_AUTH', detail);
    if (response.status === 409) throw new FatalError('SCHEMA_INCOMPATIBLE', detail);
    if (response.status === 422) throw new FatalError('SCHEMA_INVALID', detail);
    if (response.status >= 500 || response.status === 429)
      throw new TransientError('SCHEMA_REGISTRY_UNAVAILABLE', detail);
    throw new FatalError('SCHEMA_REGISTRY_ERROR', detail);
  }

  function cached<K, V>(cache: Map<K, Promise<V>>, key: K, load: () => Promise<V>): Promise<V> {
    let value = cache.get(key);
    if (!value) {
      value = load();
      cache.set(key, value);
      value.catch(() => cache.delete(key));
    }
    return value;
  }

  return {
    register: (subject, schema) =>
      cached(ids, `${subject}\u0000${schema}`, async () => {
        const json = await call('POST', `/subjects/${encodeURIComponent(subject)}/versions`, { schema });
        if (typeof json.id !== 'number')
          throw new FatalError('SCHEMA_REGISTRY_ERROR', `register ${subject}: no id in the answer`);
        return json.id;
      }),
    schemaById: (id) =>
      cached(schemas, id, async () => {
        const json = await call('GET', `/schemas/ids/${id}`);
        if (typeof json.schema !== 'string')
          throw new FatalError('SCHEMA_REGISTRY_ERROR', `schema ${id}: no schema in the answer`);
        return json.schema;
      }),
  };
}
