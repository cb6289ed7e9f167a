import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../helpers.ts';
import { startStarstream, type Running } from './helpers.ts';

/**
 * The try-it path as a new user takes it: `demo --serve` (and `replay FILE.csv --map … --serve`) keep the
 * pipeline and its API up after the stream and print how to reach it; the printed POST makes a new user known.
 * Both children start at once (each CLI start costs seconds on a busy machine); no step is timed.
 */

interface Recommendations {
  userId: string;
  coldStart: boolean;
  items: { itemId: string; title: string | null; sources: string[] }[];
}

/** The URL and token the served run printed, and the JSON of its example POST. */
async function served(run: Running): Promise<{ url: string; token: string; example: Record<string, unknown> }> {
  const [, url] = await run.waitFor(/^serving on (http:\/\/\S+) \(port \d+\)/m);
  const token = /^ {2}token: ([0-9a-f]{32}) \(made for this run/m.exec(run.stdout())?.[1];
  assert.ok(token, run.stdout());
  const example = /-X POST \S+\/v1\/events -d '(\{.*\})'$/m.exec(run.stdout())?.[1];
  assert.ok(example, run.stdout());
  return { url: url!, token, example: JSON.parse(example) as Record<string, unknown> };
}

async function recommend(url: string, token: string, user: string): Promise<Recommendations> {
  const res = await fetch(`${url}/v1/users/${encodeURIComponent(user)}/recommendations?k=5`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  return (await res.json()) as Recommendations;
}

async function postEvents(url: string, token: string, body: unknown): Promise<{ status: number; body: unknown }> {
  // As the printed curl sends it: no content type of JSON (curl -d says form data).
  const res = await fetch(`${url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

describe('a served run: the stream, then a live API that takes events', () => {
  const dir = mkdtempSync(join(tmpdir(), 'starstream-serve-'));
  // Port 0: the suites share the machine; a served run's default is ops.port (9464), else a free one.
  const env = { STARSTREAM_LOG_LEVEL: 'warn', STARSTREAM_OPS__PORT: '0' };
  let demo: Running;
  let replay: Running;
  before(() => {
    demo = startStarstream(['demo', '--serve', '--events', '1500', '--users', '100', '--items', '200', '--out', join(dir, 'recs.jsonl')], { env });
    writeFileSync(
      join(dir, 'orders.csv'),
      ['customer_id,sku,ts', ...Array.from({ length: 120 }, (_, i) => `c${i % 12},s${(i * 7) % 15},${1_704_067_200 + i * 60}`)].join('\n') + '\n',
    );
    writeFileSync(join(dir, 'items.csv'), ['id,title,categories', ...Array.from({ length: 15 }, (_, i) => `s${i},Product ${i},${i % 2 ? 'odd' : 'even'}`)].join('\n') + '\n');
    replay = startStarstream(['replay', 'orders.csv', '--map', 'user=customer_id,item=sku,time=ts', '--catalogue', 'items.csv', '--serve'], { env, cwd: dir });
  });
  after(async () => {
    await Promise.all([demo.stop('SIGKILL'), replay.stop('SIGKILL')]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('demo --serve: summary, then the URL, a token and commands; the printed POST makes a new user known; SIGTERM ends it with 0', async () => {
    const { url, token, example } = await served(demo);
    const out = demo.stdout();
    assert.ok(out.indexOf('starstream demo summary') < out.indexOf('serving on'), 'the summary comes first');
    assert.match(out, /curl -H 'authorization: Bearer [0-9a-f]+' 'http:\/\/\S+\/v1\/users\/me\/recommendations\?k=5'/);
    const user = String(example.userId);
    const cold = await recommend(url, token, user);
    assert.equal(cold.coldStart, true);

    const posted = await postEvents(url, token, example);
    assert.equal(posted.status, 202, JSON.stringify(posted.body));
    assert.deepEqual(posted.body, { accepted: 1, rejected: 0, errors: [] });
    // The event is learned in the pipeline's next batch; waits for it without a time bound beyond a hang guard.
    const known = (await eventually(async () => {
      const body = await recommend(url, token, user);
      return body.coldStart ? null : body;
    }, 300_000))!;
    assert.ok(known.items.length > 0);
    assert.notDeepEqual(known.items.map((i) => i.itemId), cold.items.map((i) => i.itemId));

    const bad = await postEvents(url, token, { ...example, eventId: 'me-bad', type: 'like' });
    assert.equal(bad.status, 422);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /^starstream_dead_letters_total\{code="UNKNOWN_EVENT_TYPE"\} 1$/m);

    assert.equal(await demo.stop('SIGTERM'), 0, demo.stderr().slice(-2_000));
  });

  it('replay FILE.csv --map --catalogue --serve: your own data behind the same API, titled from the catalogue', async () => {
    const { url, token } = await served(replay);
    assert.match(replay.stdout(), /starstream replay orders summary/);
    assert.match(replay.stdout(), /events\s+120\n/);
    const body = await recommend(url, token, 'c3');
    assert.equal(body.coldStart, false);
    assert.ok(body.items.length > 0);
    for (const item of body.items) assert.equal(item.title, `Product ${item.itemId.slice(1)}`, 'titles come from the catalogue');
    assert.equal(await replay.stop('SIGINT'), 0, replay.stderr().slice(-2_000));
  });
});
