import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { API_ROUTES } from '../../src/ops/api/routes.ts';
import { startTestPipeline, type TestPipeline } from './helpers.ts';

interface OpenApi {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, { required?: string[] }> };
}

const spec = parse(readFileSync(new URL('../../docs/openapi.yaml', import.meta.url), 'utf8')) as OpenApi;
const TOKEN = 'openapi-test-token';
let running: TestPipeline;

before(async () => {
  running = await startTestPipeline({ ops: { apiToken: TOKEN } });
  await running.feed(60);
});
after(() => running.close());

test('docs/openapi.yaml documents exactly the routes the API serves', () => {
  assert.match(spec.openapi, /^3\./);
  const documented = Object.entries(spec.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  const served = API_ROUTES.map((r) => `${r.method} ${r.path}`);
  assert.deepEqual(documented.sort(), [...served].sort());
});

test('every documented route is served, answers with a documented status, and has the documented fields', async () => {
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const url = `${running.server.url}${path.replace('{id}', 'u1')}`;
      const res = await fetch(url, { method: method.toUpperCase(), headers: { authorization: `Bearer ${TOKEN}` } });
      assert.notEqual(res.status, 404, `${method} ${path} is served`);
      assert.ok(String(res.status) in op.responses, `${method} ${path} answered ${res.status}, which the spec does not list`);
      const body = (await res.json()) as Record<string, unknown>;
      if (path.endsWith('/recommendations')) {
        for (const field of spec.components.schemas.Recommendations!.required ?? []) assert.ok(field in body, `response lacks ${field}`);
      }
      const unauthorized = await fetch(url, { method: method.toUpperCase() });
      assert.equal(unauthorized.status, 401);
      assert.ok('401' in op.responses, `${method} ${path} documents 401`);
    }
  }
});
