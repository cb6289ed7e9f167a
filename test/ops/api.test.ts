import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { assignArm } from '../../src/experiments/assign.ts';
import { compileExperiment } from '../../src/experiments/definition.ts';
import { baselineVsBlend } from '../experiments/helpers.ts';
import { point, tempRegistry } from '../star/helpers.ts';
import { startTestPipeline, type TestPipeline } from './helpers.ts';

const TOKEN = 'test-token-0123456789';

interface RecommendationBody {
  userId: string;
  k: number;
  modelVersion: string;
  coldStart: boolean;
  candidates: number;
  items: { itemId: string; title: string | null; score: number; sources: string[]; evidence: string[] }[];
}
interface ErrorBody {
  error: { code: string; message: string };
}

async function call(
  running: TestPipeline,
  path: string,
  init: { method?: string; token?: string | null } = {},
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const headers: Record<string, string> = {};
  const token = init.token === undefined ? TOKEN : init.token;
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${running.server.url}${path}`, { method: init.method ?? 'GET', headers });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

function knownUser(running: TestPipeline): Promise<string> {
  // Synthetic user ids are u<number>; the first one with a profile in the store.
  return (async () => {
    for (let i = 0; i < 60; i++) {
      const id = `u${i}`;
      if ((await running.pipeline.engine.store.getUsers([id])).has(id)) return id;
    }
    throw new Error('no synthetic user in the store');
  })();
}

describe('on-demand API with a STAR registry and a token', () => {
  const registry = tempRegistry(['v1', 'v2']);
  let running: TestPipeline;
  let user: string;
  before(async () => {
    running = await startTestPipeline({
      // A retired model is closed after this grace, whoever still holds it; requests in flight across a reload
      // on a loaded machine can hold it for seconds, so the grace is far beyond that.
      ranking: { scorer: 'star', modelDir: registry.dir, registryPollMs: 0, retireGraceMs: 10_000 },
      ops: { apiToken: TOKEN },
    });
    await running.feed(300);
    user = await knownUser(running);
  });
  after(async () => {
    await running.close();
    registry.cleanup();
  });

  test('ranks a known user now, with evidence and the model version', async () => {
    const res = await call(running, `/v1/users/${user}/recommendations?k=5`);
    assert.equal(res.status, 200);
    const body = res.body as RecommendationBody;
    assert.equal(body.userId, user);
    assert.equal(body.k, 5);
    assert.equal(body.coldStart, false);
    assert.equal(body.modelVersion, 'star-v1');
    assert.ok(body.items.length > 0 && body.items.length <= 5);
    for (const item of body.items) {
      assert.ok(Number.isFinite(item.score));
      assert.ok(item.evidence.length > 0, 'every item is explained');
      assert.ok(item.sources.length > 0);
    }
    const scores = body.items.map((i) => i.score);
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a), 'best first');
  });

  test('k defaults to ranking.topK', async () => {
    const res = await call(running, `/v1/users/${user}/recommendations`);
    assert.equal(res.status, 200);
    assert.equal((res.body as RecommendationBody).k, running.config.ranking.topK);
  });

  test('an unknown user gets the cold-start answer, not an error', async () => {
    const res = await call(running, `/v1/users/${encodeURIComponent('never seen/é')}/recommendations?k=3`);
    assert.equal(res.status, 200);
    const body = res.body as RecommendationBody;
    assert.equal(body.userId, 'never seen/é');
    assert.equal(body.coldStart, true);
    assert.equal(body.items.length, 3);
    assert.ok(body.items.every((i) => i.sources.includes('popular')), 'cold users lean on popularity');
  });

  test('bad parameters get a clear 4xx', async () => {
    const cases: [string, number, string, string?][] = [
      [`/v1/users/${user}/recommendations?k=0`, 400, 'INVALID_K'],
      [`/v1/users/${user}/recommendations?k=abc`, 400, 'INVALID_K'],
      [`/v1/users/${user}/recommendations?k=1001`, 400, 'INVALID_K'],
      ['/v1/users//recommendations', 400, 'INVALID_USER_ID'],
      [`/v1/users/${user}/recommendations?k=-3`, 400, 'INVALID_K'],
      [`/v1/users/${user}/recommendations?k=2&k=3`, 400, 'INVALID_K'],
      [`/v1/users/${user}/recommendations?count=3`, 400, 'UNKNOWN_PARAMETER'],
      [`/v1/users/${'x'.repeat(300)}/recommendations`, 400, 'INVALID_USER_ID'],
      ['/v1/users/%E0%A4%A/recommendations', 400, 'INVALID_USER_ID'],
      ['/v1/users/a%00b/recommendations', 400, 'INVALID_USER_ID'],
      [`/v1/users/${user}/recommendations`, 405, 'METHOD_NOT_ALLOWED', 'POST'],
      ['/v1/admin/model/reload', 405, 'METHOD_NOT_ALLOWED', 'GET'],
      ['/v1/users', 404, 'NOT_FOUND'],
      ['/v1/nothing/here', 404, 'NOT_FOUND'],
    ];
    for (const [path, status, code, method] of cases) {
      const res = await call(running, path, method ? { method } : {});
      assert.equal(res.status, status, `${method ?? 'GET'} ${path}`);
      const body = res.body as ErrorBody;
      assert.equal(body.error.code, code, path);
      assert.ok(body.error.message.length > 0);
    }
    const wrongMethod = await call(running, `/v1/users/${user}/recommendations`, { method: 'DELETE' });
    assert.equal(wrongMethod.headers.get('allow'), 'GET, HEAD');
  });

  test('every /v1 route wants the bearer token when one is configured', async () => {
    for (const [path, method] of [
      [`/v1/users/${user}/recommendations`, 'GET'],
      ['/v1/admin/consumption/pause', 'POST'],
      ['/v1/admin/model/reload', 'POST'],
    ] as const) {
      const missing = await call(running, path, { method, token: null });
      assert.equal(missing.status, 401, path);
      assert.equal((missing.body as ErrorBody).error.code, 'UNAUTHORIZED');
      assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer/);
      const wrong = await call(running, path, { method, token: 'not-the-token-123456' });
      assert.equal(wrong.status, 401, path);
    }
    // Health and metrics stay open: probes and Prometheus carry no token.
    for (const path of ['/healthz', '/readyz']) assert.equal((await fetch(`${running.server.url}${path}`)).status, 200, path);
    assert.equal((await fetch(`${running.server.url}/metrics`)).status, 200);
  });

  test('pause and resume consumption', async () => {
    const paused = await call(running, '/v1/admin/consumption/pause', { method: 'POST' });
    assert.deepEqual([paused.status, paused.body], [200, { paused: true }]);
    assert.equal(running.server.paused, true);
    assert.match(await running.registry.metrics(), /^starstream_consumption_paused 1$/m);
    const ready = await fetch(`${running.server.url}/readyz`);
    assert.equal(ready.status, 200, 'a paused instance still serves the API');
    const resumed = await call(running, '/v1/admin/consumption/resume', { method: 'POST' });
    assert.deepEqual([resumed.status, resumed.body], [200, { paused: false }]);
    assert.match(await running.registry.metrics(), /^starstream_consumption_paused 0$/m);
    await running.feed(50); // consumption goes on
  });

  test('concurrent requests during a model reload all succeed, each from one whole model', async () => {
    point(registry.dir, 'v2');
    const requests = Array.from({ length: 40 }, (_, i) =>
      call(running, `/v1/users/${i % 2 === 0 ? user : `cold-${i}`}/recommendations?k=${1 + (i % 10)}`),
    );
    const reload = call(running, '/v1/admin/model/reload', { method: 'POST' });
    const more = Array.from({ length: 20 }, () => call(running, `/v1/users/${user}/recommendations`));
    const [reloaded, ...answers] = await Promise.all([reload, ...requests, ...more]);
    assert.equal(reloaded!.status, 200);
    assert.deepEqual(reloaded!.body, { status: 'swapped', version: 'star-v2' });
    const versions = new Set<string>();
    for (const res of answers) {
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const body = res.body as RecommendationBody;
      versions.add(body.modelVersion);
      assert.ok(body.items.length > 0 && body.items.every((i) => Number.isFinite(i.score)));
    }
    assert.ok([...versions].every((v) => v === 'star-v1' || v === 'star-v2'), [...versions].join());
    const after = await call(running, `/v1/users/${user}/recommendations`);
    assert.equal((after.body as RecommendationBody).modelVersion, 'star-v2');
    const again = await call(running, '/v1/admin/model/reload', { method: 'POST' });
    assert.deepEqual([again.status, again.body], [200, { status: 'unchanged', version: 'star-v2' }]);
    const metrics = await running.registry.metrics();
    assert.match(metrics, /^starstream_model_info\{version="star-v2",provider="cpu"\} 1$/m);
    assert.match(metrics, /^starstream_model_loads_total 2$/m);
    assert.match(metrics, /^starstream_api_requests_total\{route="\/v1\/users\/\{id\}\/recommendations",method="GET",status="200"\} \d+$/m);
  });

  test('a model that fails its checks is refused (422) and the serving one stays', async () => {
    mkdirSync(join(registry.dir, 'broken'));
    writeFileSync(join(registry.dir, 'broken', 'star.json'), '{"not":"a manifest"}');
    point(registry.dir, 'broken');
    const res = await call(running, '/v1/admin/model/reload', { method: 'POST' });
    assert.equal(res.status, 422);
    const body = res.body as { status: string; error: { code: string } };
    assert.equal(body.status, 'refused');
    assert.match(body.error.code, /^MODEL_/);
    const still = await call(running, `/v1/users/${user}/recommendations`);
    assert.equal((still.body as RecommendationBody).modelVersion, 'star-v2');
    assert.match(await running.registry.metrics(), /^starstream_model_refusals_total\{code="MODEL_[A-Z_]+"\} 1$/m);
  });

  test('readiness goes false while draining', async () => {
    const stopping = running.pipeline.runner.stop();
    const res = await fetch(`${running.server.url}/readyz`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { checks: Record<string, boolean> };
    assert.equal(body.checks.consuming, false);
    await stopping;
  });
});

describe('on-demand API without a token, baseline ranker', () => {
  let running: TestPipeline;
  before(async () => {
    running = await startTestPipeline();
    await running.feed(100);
  });
  after(() => running.close());

  test('the read route is open; admin routes are disabled', async () => {
    const res = await call(running, '/v1/users/u1/recommendations?k=2', { token: null });
    assert.equal(res.status, 200);
    assert.match((res.body as RecommendationBody).modelVersion, /^baseline/);
    for (const path of ['/v1/admin/model/reload', '/v1/admin/consumption/pause']) {
      const admin = await call(running, path, { method: 'POST', token: null });
      assert.equal(admin.status, 403, path);
      assert.equal((admin.body as ErrorBody).error.code, 'ADMIN_DISABLED');
    }
  });
});

describe('HTTP semantics of the ops server and the API', () => {
  let running: TestPipeline;
  before(async () => {
    running = await startTestPipeline();
    await running.feed(100);
  });
  after(() => running.close());

  test('HEAD on every GET route answers like GET, without a body', async () => {
    for (const path of ['/v1/users/u1/recommendations?k=2', '/healthz', '/readyz', '/metrics']) {
      const get = await fetch(`${running.server.url}${path}`);
      const head = await fetch(`${running.server.url}${path}`, { method: 'HEAD' });
      assert.equal(head.status, get.status, path);
      assert.equal(head.headers.get('content-type'), get.headers.get('content-type'), path);
      assert.equal(await head.text(), '', `${path}: no body`);
      await get.arrayBuffer();
    }
  });

  test('other methods on /healthz, /readyz and /metrics are 405 with Allow', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const res = await fetch(`${running.server.url}${path}`, { method });
        assert.equal(res.status, 405, `${method} ${path}`);
        assert.equal(res.headers.get('allow'), 'GET, HEAD');
        assert.equal(((await res.json()) as ErrorBody).error.code, 'METHOD_NOT_ALLOWED');
      }
    }
  });

  test('an empty user id is a 400, not an unknown route', async () => {
    const res = await call(running, '/v1/users//recommendations', { token: null });
    assert.equal(res.status, 400);
    assert.equal((res.body as ErrorBody).error.code, 'INVALID_USER_ID');
  });

  test('k above the maximum is a 400 naming the limit; the answer\'s k is the length of its list', async () => {
    const over = await call(running, '/v1/users/u1/recommendations?k=1001', { token: null });
    assert.equal(over.status, 400);
    assert.match((over.body as ErrorBody).error.message, /k must be from 1 to 1000, got 1001/);
    const most = await call(running, '/v1/users/u1/recommendations?k=1000', { token: null });
    assert.equal(most.status, 200);
    const body = most.body as RecommendationBody;
    assert.ok(body.items.length < 1000, 'fewer candidates than asked for');
    assert.equal(body.k, body.items.length);
    assert.ok(body.k <= body.candidates);
  });

  test("the README's example response has exactly the fields of a real one", async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const line = readme.split('\n').find((l) => l.startsWith('# {"userId"'));
    assert.ok(line, 'README has an example response');
    const example = JSON.parse(line.slice(2)) as Record<string, unknown> & { items: Record<string, unknown>[] };
    const real = (await call(running, '/v1/users/u1/recommendations?k=2', { token: null })).body as Record<string, unknown> & { items: Record<string, unknown>[] };
    assert.deepEqual(Object.keys(example), Object.keys(real));
    assert.deepEqual(Object.keys(example.items[0]!), Object.keys(real.items[0]!));
  });
});

describe('on-demand API in an online experiment: the user\'s arm, and an admin-only override', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'starstream-api-experiment-'));
  const experiment = baselineVsBlend('api', 'api-test', stateDir);
  let withToken: TestPipeline;
  let withoutToken: TestPipeline;
  let user: string;
  before(async () => {
    withToken = await startTestPipeline({ experiment, ops: { apiToken: TOKEN } });
    withoutToken = await startTestPipeline({ experiment: { ...experiment, stateDir: join(stateDir, 'open') } });
    await withToken.feed(300);
    user = await knownUser(withToken);
  });
  after(async () => {
    await withToken.close();
    await withoutToken.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('without an override a user is ranked by the arm the hash gives them, every time', async () => {
    const want = assignArm(user, compileExperiment(experiment)).arm;
    for (let i = 0; i < 3; i++) {
      const res = await call(withToken, `/v1/users/${user}/recommendations?k=5`);
      assert.equal(res.status, 200);
      assert.equal((res.body as { arm: string | null }).arm, want);
    }
  });

  test('?arm= ranks with that arm for an admin; an unknown arm is a 400 naming it', async () => {
    for (const arm of ['control', 'blend']) {
      const res = await call(withToken, `/v1/users/${user}/recommendations?k=5&arm=${arm}`);
      assert.equal(res.status, 200);
      assert.equal((res.body as { arm: string }).arm, arm);
    }
    const unknown = await call(withToken, `/v1/users/${user}/recommendations?k=5&arm=nobody`);
    assert.equal(unknown.status, 400);
    assert.equal((unknown.body as ErrorBody).error.code, 'UNKNOWN_ARM');
    assert.match((unknown.body as ErrorBody).error.message, /nobody/);
  });

  test('without the token the override is refused; without ops.apiToken it is disabled', async () => {
    const anonymous = await call(withToken, `/v1/users/${user}/recommendations?k=5&arm=blend`, { token: null });
    assert.equal(anonymous.status, 401);
    const open = await call(withoutToken, `/v1/users/${user}/recommendations?k=5&arm=blend`, { token: null });
    assert.equal(open.status, 403);
    assert.equal((open.body as ErrorBody).error.code, 'ADMIN_DISABLED');
  });
});
