import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import fc from 'fast-check';
import { parse } from 'yaml';
import { createLogger } from '../../src/logging/logger.ts';
import { startTestPipeline, type TestPipeline } from '../ops/helpers.ts';
import { fuzzAsync, hostileText } from './fuzz.ts';

/**
 * The ops server's HTTP API (`src/ops/api/routes.ts`, `src/ops/server.ts`, docs/openapi.yaml) against hostile
 * requests, sent as raw bytes over a socket so nothing (fetch, the http client) tidies them first: path ids
 * percent-encoded or not, with broken escapes, control characters, `..`, Unicode and raw non-ASCII bytes, very
 * long; query strings with repeated, unknown and empty keys and k values that are not whole numbers; every
 * kind of Authorization header (the token in another case, with extra spaces, of the right length in other
 * bytes, huge, repeated); random methods, bodies, lying Content-Length, chunked garbage, oversized headers.
 *
 * Contract: every request is answered within a few seconds (no hang, no dropped connection for a request that
 * is one well-formed HTTP message), never with a 5xx, and the answer is the route's documented status and
 * JSON body (docs/openapi.yaml), or a JSON error `{error: {code, message}}` with a 4xx; the token appears in
 * no answer and no log line; a good request is answered afterwards.
 */

const TOKEN = 'fuzz-token-0123456789abcdef';

interface Spec {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  components: Record<string, Record<string, unknown>>;
}
const spec = parse(readFileSync(new URL('../../docs/openapi.yaml', import.meta.url), 'utf8')) as Spec;

/** `$ref`s of the spec resolved in place (the spec has no cycles). */
function resolve(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(resolve);
  if (node === null || typeof node !== 'object') return node;
  const ref = (node as { $ref?: string }).$ref;
  if (ref !== undefined) {
    const [, , group, name] = ref.split('/');
    return resolve(spec.components[group!]![name!]);
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolve(v)]));
}

const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
const errorSchema = ajv.compile(resolve(spec.components.schemas!.Error) as object);

interface Documented {
  readonly template: string;
  readonly pattern: RegExp;
  /** method → status → body schema (null: no body documented). */
  readonly methods: Map<string, Map<string, ValidateFunction | null>>;
}
const DOCUMENTED: Documented[] = Object.entries(spec.paths).map(([template, ops]) => ({
  template,
  pattern: new RegExp(`^${template.replace('{id}', '[^/]+')}/?$`),
  methods: new Map(
    Object.entries(ops).map(([method, op]) => [
      method.toUpperCase(),
      new Map(
        Object.entries(op.responses).map(([status, response]) => {
          const schema = (resolve(response) as { content?: Record<string, { schema: object }> }).content?.['application/json']?.schema;
          return [status, schema ? ajv.compile(schema) : null];
        }),
      ),
    ]),
  ),
}));

// ---------------------------------------------------------------------------------------------------------
// A raw HTTP/1.1 exchange: bytes out, the whole answer in (Connection: close, read to the end).

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly raw: Buffer;
}

async function exchange(port: number, request: Buffer, timeoutMs = 5_000): Promise<RawResponse | 'closed'> {
  const raw = await new Promise<Buffer>((resolvePromise, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer in ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 300))}`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    // The server may close while we still write a large request: what it answered is what counts.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolvePromise(Buffer.concat(chunks));
    });
    socket.end(request);
  });
  return parseResponse(raw);
}

function parseResponse(whole: Buffer): RawResponse | 'closed' {
  let raw = whole;
  // `Expect: 100-continue` is answered with an interim 100 first.
  while (raw.subarray(0, 13).toString('latin1') === 'HTTP/1.1 100 ') raw = raw.subarray(raw.indexOf('\r\n\r\n') + 4);
  if (raw.length === 0) return 'closed';
  const split = raw.indexOf('\r\n\r\n');
  assert.ok(split > 0, `an answer without a header block: ${JSON.stringify(raw.toString('latin1').slice(0, 300))}`);
  const [statusLine, ...lines] = raw.subarray(0, split).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine!);
  assert.ok(m, `a status line: ${statusLine}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(':');
    headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
  }
  let body = raw.subarray(split + 4);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  else if (headers['content-length'] !== undefined) {
    assert.equal(body.length, Number(headers['content-length']), 'the body is as long as Content-Length says');
  }
  return { status: Number(m[1]), headers, body, raw: whole };
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    assert.ok(eol >= 0, 'a complete chunked body');
    const size = parseInt(data.subarray(at, eol).toString('latin1'), 16);
    assert.ok(Number.isInteger(size), 'a chunk size');
    if (size === 0) return Buffer.concat(out);
    out.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

// ---------------------------------------------------------------------------------------------------------
// What is thrown at it.

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/** A path id: percent-encoded text of any kind, broken escapes, dot segments, raw bytes, very long. */
const pathId: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constantFrom('u1', 'u7', 'never-seen', 'a%2Fb', '%E0%A4%A', '%', '%zz', '%C0%AF', '%ED%A0%80', '%FF', '%00', 'a%0Ab', '%7F', '%1b[31m', '..', '.', '%2e%2e', '%2E', '%20', '+', '{id}', '%C2%85', '%E2%80%A8', '%F0%9F%98%80').map(bytes),
  hostileText(8).map((t) => bytes(encodeURIComponent(t.replace(/[\ud800-\udfff]/g, '\ufffd')))),
  fc.string({ unit: 'binary', maxLength: 30 }).map((t) => Buffer.from(t.replace(/[\ud800-\udfff]/g, 'x'), 'utf8')),
  fc.uint8Array({ minLength: 1, maxLength: 12 }).map((a) => Buffer.from(a)),
  fc.constantFrom(255, 256, 257, 1_000, 6_000).chain((n) => fc.constantFrom('x', '%41', 'é').map((unit) => bytes(unit === 'é' ? encodeURIComponent('é'.repeat(n)) : unit.repeat(n)))),
);

const routePath: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(pathId, fc.constantFrom('', '/')).map(([id, slash]) => Buffer.concat([bytes('/v1/users/'), id, bytes(`/recommendations${slash}`)])) },
  { weight: 2, arbitrary: fc.constantFrom('/v1/admin/model/reload', '/v1/admin/consumption/pause', '/v1/admin/consumption/resume', '/v1/admin/model/reload/').map(bytes) },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.constantFrom('v1', 'V1', 'users', 'u1', 'admin', 'model', 'reload', 'consumption', '', '..', '.', '%2e%2e', 'recommendations', 'x'), { maxLength: 6 })
      .map((segments) => bytes(`/${segments.join('/')}`)),
  },
  { weight: 1, arbitrary: fc.constantFrom('*', '//v1/users/u1/recommendations', 'http://[/v1', 'http://x:99999/v1/users/u1/recommendations', 'http://localhost/v1/users/u1/recommendations', 'v1/users/u1/recommendations', '/v1/users/u1/recommendations?').map(bytes) },
);

const kValue = fc.oneof(
  fc.constantFrom('', '0', '1', '5', '1000', '1001', '-1', '-0', '1.5', '1e3', 'NaN', 'Infinity', '0x10', '+5', ' 5', '5%20', '%35', '99999999999999999999', '00000005', '１', 'null', '[]', '5&k=6'),
  fc.integer({ min: -5, max: 1_200 }).map(String),
  fc.string({ maxLength: 8 }).map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, ''))),
);
const queryParam = fc.oneof(
  { weight: 5, arbitrary: kValue.map((v) => `k=${v}`) },
  { weight: 1, arbitrary: fc.constantFrom('k', 'k[]=1', 'k[0]=1', 'K=3', 'count=3', '=3', '&', '__proto__=1', 'k=1;k=2', 'k=%E0%A4%A', '%ZZ=1') },
);
const query: fc.Arbitrary<string> = fc.option(fc.array(queryParam, { maxLength: 4 }).map((ps) => `?${ps.join('&')}`), { nil: '' });

const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST') },
  { weight: 3, arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'CONNECT', 'get', 'G ET', '') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,8}$/) },
);

/** Authorization headers (each a whole header line, or none). */
const authorization: fc.Arbitrary<readonly Buffer[]> = fc.oneof(
  { weight: 5, arbitrary: fc.constant<readonly Buffer[]>([bytes(`Authorization: Bearer ${TOKEN}`)]) },
  { weight: 1, arbitrary: fc.constant<readonly Buffer[]>([]) },
  {
    weight: 4,
    arbitrary: fc
      .constantFrom(
        `bearer ${TOKEN}`,
        `BEARER ${TOKEN}`,
        `Bearer  ${TOKEN}`,
        `Bearer\t${TOKEN}`,
        `Bearer ${TOKEN} `,
        `Bearer ${TOKEN}${TOKEN}`,
        `Bearer ${TOKEN.slice(0, -1)}`,
        `Bearer ${TOKEN.slice(0, -1)}X`,
        `Bearer ${TOKEN.toUpperCase()}`,
        'Bearer',
        'Bearer ',
        `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`,
        TOKEN,
        `Token ${TOKEN}`,
      )
      .map((v): readonly Buffer[] => [bytes(`Authorization: ${v}`)]),
  },
  {
    weight: 2,
    // Same length as the token in characters, other bytes (latin1 / UTF-8 / obs-text), or random.
    arbitrary: fc
      .oneof(
        fc.constantFrom('é', 'ÿ', '\u0080', 'a').map((c) => bytes(c.repeat(TOKEN.length))),
        fc.uint8Array({ minLength: TOKEN.length, maxLength: TOKEN.length }).map((a) => Buffer.from(a.map((b) => (b < 0x20 || b === 0x7f ? 0x41 : b)))),
        fc.constant(Buffer.from('é'.repeat(TOKEN.length), 'utf8')),
        fc.constantFrom(100, 9_000, 20_000).map((n) => bytes('t'.repeat(n))),
      )
      .map((v): readonly Buffer[] => [Buffer.concat([bytes('Authorization: Bearer '), v])]),
  },
  { weight: 1, arbitrary: fc.constant<readonly Buffer[]>([bytes('Authorization: Bearer wrong-token'), bytes(`Authorization: Bearer ${TOKEN}`)]) },
);

const extraHeaders: fc.Arbitrary<Buffer[]> = fc.array(
  fc.oneof(
    fc.constantFrom('Accept: */*', 'Accept: text/html', 'X-Forwarded-For: 1.2.3.4', 'Expect: 100-continue', 'Upgrade: websocket', 'Cookie: a=b', 'Content-Type: application/json', 'Host: evil.example').map(bytes),
    fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.concat([bytes('X-Junk: '), Buffer.from(a.map((b) => (b === 0x0a || b === 0x0d ? 0x20 : b)))])),
    fc.constantFrom(17_000, 70_000).map((n) => bytes(`X-Huge: ${'h'.repeat(n)}`)),
  ),
  { maxLength: 3 },
);

type Body = { kind: 'none' } | { kind: 'exact'; data: Uint8Array } | { kind: 'lying'; data: Uint8Array; claimed: string } | { kind: 'chunked'; data: string };
const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Body>({ kind: 'none' }) },
  { weight: 2, arbitrary: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.json().map((j) => Buffer.from(j))).map((data): Body => ({ kind: 'exact', data })) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lying' as const), data: fc.uint8Array({ maxLength: 50 }), claimed: fc.constantFrom('-1', 'abc', '1e3', '99999999999999999999', '0', '2', '5, 6') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('chunked' as const), data: fc.constantFrom('zz\r\n', '5\r\nhello\r\n0\r\n\r\n', '0\r\n\r\n', 'ffffffffffffffff\r\n', '-1\r\n') }) },
);

interface Req {
  readonly method: string;
  readonly target: Buffer;
  readonly version: string;
  readonly host: boolean;
  readonly auth: readonly Buffer[];
  readonly extra: readonly Buffer[];
  readonly body: Body;
}

/** How a counterexample prints: the request's first bytes, not every byte of a 70 kB header. */
function described(r: Req): Req {
  return Object.assign(r, { [fc.toStringMethod]: () => `Req(${JSON.stringify(encode(r).toString('latin1').slice(0, 600))}${encode(r).length > 600 ? '…' : ''})` });
}

const request: fc.Arbitrary<Req> = fc.record({
  method,
  target: fc.tuple(routePath, query).map(([p, q]) => Buffer.concat([p, bytes(q)])),
  version: fc.oneof({ weight: 12, arbitrary: fc.constant('HTTP/1.1') }, { weight: 1, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'HTTP/1.1 x', '') }),
  host: fc.oneof({ weight: 12, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  auth: authorization,
  extra: extraHeaders,
  body,
}).map(described);

function encode(r: Req): Buffer {
  const head: Buffer[] = [Buffer.concat([bytes(`${r.method} `), r.target, bytes(r.version ? ` ${r.version}` : '')])];
  if (r.host) head.push(bytes('Host: 127.0.0.1'));
  head.push(...r.auth, ...r.extra, bytes('Connection: close'));
  let payload: Buffer = Buffer.alloc(0);
  if (r.body.kind === 'exact') {
    payload = Buffer.from(r.body.data);
    head.push(bytes(`Content-Length: ${payload.length}`));
  } else if (r.body.kind === 'lying') {
    payload = Buffer.from(r.body.data);
    head.push(bytes(`Content-Length: ${r.body.claimed}`));
  } else if (r.body.kind === 'chunked') {
    payload = bytes(r.body.data);
    head.push(bytes('Transfer-Encoding: chunked'));
  }
  return Buffer.concat([...head.flatMap((h) => [h, bytes('\r\n')]), bytes('\r\n'), payload]);
}

/** True when the request is one well-formed HTTP/1.1 message that must get a complete answer. */
function wellFormed(r: Req): boolean {
  return /^[A-Z]+$/.test(r.method) && r.method !== 'CONNECT' && r.version === 'HTTP/1.1' && (r.body.kind === 'none' || r.body.kind === 'exact');
}

// ---------------------------------------------------------------------------------------------------------

/** Checks one answer against the contract; `label` says what was sent. */
function checkAnswer(res: RawResponse, r: Req, tokenConfigured: boolean): void {
  const label = `${r.method} ${r.target.toString('latin1').slice(0, 120)} → ${res.status} ${res.body.toString('utf8').slice(0, 300)}`;
  assert.ok(res.status >= 200 && res.status < 500, `no 5xx for bad input: ${label}`);
  assert.ok(!res.raw.toString('latin1').includes(TOKEN), `the token is never echoed: ${label}`);
  assert.equal(res.headers['content-type'], 'application/json', `every answer is JSON: ${label}`);
  if (r.method === 'HEAD' && res.body.length === 0) return;
  let value: unknown;
  try {
    value = JSON.parse(res.body.toString('utf8'));
  } catch {
    assert.fail(`the body is JSON: ${label}`);
  }
  if (res.status >= 400) {
    assert.ok(errorSchema(value), `a 4xx is {error: {code, message}}: ${label}`);
    const e = (value as { error: { code: string; message: string } }).error;
    assert.match(e.code, /^[A-Z][A-Z_]+$/, label);
    assert.ok(e.message.length > 0 && e.message.length <= 400, `a clear, bounded message: ${label}`);
  }
  // Which documented route the server saw (after its URL parsing and dot-segment removal), if any.
  let pathname: string | null = null;
  try {
    pathname = new URL(r.target.toString('latin1'), 'http://localhost').pathname;
  } catch {
    pathname = null;
  }
  const route = pathname === null ? undefined : DOCUMENTED.find((d) => d.pattern.test(pathname!));
  // Refused before routing (the parser, the Host check, the URL): nothing route-specific to check.
  const code = res.status >= 400 ? (value as { error: { code: string } }).error.code : '';
  if (!route || ['BAD_REQUEST', 'HEADERS_TOO_LARGE', 'REQUEST_TIMEOUT'].includes(code)) return;
  const statuses = route.methods.get(r.method);
  if (!statuses) {
    if (res.status !== 400) assert.equal(res.status, 405, `a method the route does not serve: ${label}`);
    return;
  }
  const validate = statuses.get(String(res.status));
  assert.ok(validate !== undefined || res.status === 400, `a documented status for ${r.method} ${route.template}: ${label}`);
  if (validate) assert.ok(validate(value), `the documented body: ${label}: ${ajv.errorsText(validate.errors)}`);
  if (res.status === 200 && route.template.endsWith('/recommendations')) {
    const b = value as { k: number; items: { score: number }[] };
    assert.ok(b.k >= 1 && b.k <= 1_000 && b.items.length <= b.k, label);
    assert.ok(b.items.every((i) => Number.isFinite(i.score)), label);
  }
  if (res.status === 200 && route.template.startsWith('/v1/admin/')) assert.ok(tokenConfigured, 'admin answers only with a token configured');
}

describe('fuzz: the ops HTTP API', () => {
  const logs: string[] = [];
  const logSink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  let withToken: TestPipeline;
  let open: TestPipeline;
  const port = (p: TestPipeline): number => Number(new URL(p.server.url).port);

  before(async () => {
    withToken = await startTestPipeline({ ops: { apiToken: TOKEN } }, createLogger('debug', logSink));
    open = await startTestPipeline({}, createLogger('debug', logSink));
    await Promise.all([withToken.feed(80), open.feed(40)]);
  });
  after(async () => {
    await withToken.close();
    await open.close();
  });

  async function good(p: TestPipeline, tokenConfigured: boolean): Promise<void> {
    const res = await exchange(port(p), bytes(`GET /v1/users/u1/recommendations?k=3 HTTP/1.1\r\nHost: x\r\n${tokenConfigured ? `Authorization: Bearer ${TOKEN}\r\n` : ''}Connection: close\r\n\r\n`));
    assert.ok(res !== 'closed' && res.status === 200, 'a good request is answered afterwards');
  }

  it('hostile requests get a documented answer or a JSON 4xx, never a 5xx, a hang or the token', async () => {
    await fuzzAsync(
      fc.asyncProperty(request, fc.boolean(), async (r, tokenConfigured) => {
        const p = tokenConfigured ? withToken : open;
        const res = await exchange(port(p), encode(r));
        if (res === 'closed') {
          // Only a request that is not one well-formed message may be cut off (Node destroys the socket on
          // a parse error while the answer to what came before it is under way).
          assert.ok(!wellFormed(r), `a well-formed request got no answer: ${encode(r).toString('latin1').slice(0, 300)}`);
        } else {
          checkAnswer(res, r, tokenConfigured);
        }
        await good(p, tokenConfigured);
      }),
      { seed: 9_001, numRuns: 250 },
    );
    assert.ok(!logs.join('').includes(TOKEN), 'the token is in no log line');
  });

  it('regressions: requests that answered 500, a bare status line or nothing', async () => {
    const send = async (text: Buffer | string, p = withToken) => {
      const res = await exchange(port(p), typeof text === 'string' ? bytes(text) : text);
      assert.ok(res !== 'closed', `an answer to ${String(text).slice(0, 80)}`);
      return { status: res.status, body: JSON.parse(res.body.toString('utf8')) as { error: { code: string } }, type: res.headers['content-type'] };
    };
    // A bearer value as long as the token in characters but not in UTF-8 bytes: timingSafeEqual threw (500).
    const sameLength = Buffer.concat([bytes('GET /v1/users/u1/recommendations HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer '), bytes('é'.repeat(TOKEN.length)), bytes('\r\n\r\n')]);
    assert.deepEqual(await send(sameLength), { status: 401, body: { error: { code: 'UNAUTHORIZED', message: 'wrong bearer token' } }, type: 'application/json' });
    // An absolute-form target that is not a URL: `new URL` threw, a text/plain 500.
    for (const target of ['http://[/v1', 'http://x:99999/v1/users/u1/recommendations']) {
      const res = await send(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.deepEqual([res.status, res.body.error.code, res.type], [400, 'BAD_REQUEST', 'application/json'], target);
    }
    // What Node's parser refuses: a bare `400` / `431` status line, no JSON.
    for (const [text, status] of [
      ['FOO /v1 HTTP/1.1\r\nHost: x\r\n\r\n', 400],
      [`GET /v1/users/u1/recommendations HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
      ['GET /v1/users/\u00e9/recommendations HTTP/1.1\r\nHost: x\r\n\r\n', 400],
      ['GET /v1/users/u1/recommendations HTTP/1.1\r\nConnection: close\r\n\r\n', 400], // no Host
    ] as const) {
      const res = await send(text);
      assert.deepEqual([res.status, res.type], [status, 'application/json'], text.slice(0, 40));
      assert.match(res.body.error.code, /^(BAD_REQUEST|HEADERS_TOO_LARGE)$/);
    }
    // CONNECT: the connection was dropped without an answer.
    assert.equal((await send('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')).status, 405);
    // Outside the /v1/ routes: `{"error": "not found"}`, not the API's error shape.
    const notFound = await send('GET /v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', open);
    assert.deepEqual([notFound.status, notFound.body.error.code], [404, 'NOT_FOUND']);
    await good(withToken, true);
  });
});
