import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { catalogueItems, readCatalogue } from '../../src/data/catalogue.ts';
import { inTimeOrder, readOwnFile } from '../../src/data/import-file.ts';
import { FatalError } from '../../src/errors/index.ts';
import { validateInteraction } from '../../src/stages/ingest/validate.ts';

/** Your own files with their own column names, written to a temporary folder. */

const T0 = 1_704_067_200; // 2024-01-01, epoch seconds
const check = (e: Parameters<typeof validateInteraction>[0]): void => void validateInteraction(e, { nowMs: Date.UTC(2025, 0, 1), maxEventAgeMs: 0, maxFutureSkewMs: 60_000 });

describe('importing your own file', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'starstream-import-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a clean CSV with its own column names: every row an event, no problem', async () => {
    const path = join(dir, 'clean.csv');
    await writeFile(path, `customer_id,sku,ts\nc1,s1,${T0}\nc2,s2,${T0 + 60}\nc1,"s,3",${T0 + 120}\n`);
    const file = await readOwnFile(path, { map: { user: 'customer_id', item: 'sku', time: 'ts' }, timeFormat: 'epoch-s', catalogue: null, check });
    assert.deepEqual(file.problems.list(), []);
    assert.equal(file.rows, 3);
    assert.deepEqual(
      file.events.map((e) => [e.eventId, e.userId, e.itemId, e.type, e.timestampMs]),
      [
        ['clean:2', 'c1', 's1', 'view', T0 * 1000],
        ['clean:3', 'c2', 's2', 'view', (T0 + 60) * 1000],
        ['clean:4', 'c1', 's,3', 'view', (T0 + 120) * 1000],
      ],
    );
    assert.deepEqual([file.users, file.items, file.span], [2, 3, { firstMs: T0 * 1000, lastMs: (T0 + 120) * 1000 }]);
  });

  it('tallies every kind of problem with its count, first lines and first message', async () => {
    const path = join(dir, 'messy.csv');
    const catalogue = join(dir, 'items.csv');
    await writeFile(catalogue, 'id,title,categories\ns1,Red shoe,shoes|red\ns2,"Blue ""hat""",hats;blue\ns2,Again,\n,No id,\n');
    await writeFile(
      path,
      [
        'order,customer,sku,ts,rating',
        `o1,c1,s1,${T0},5`, // 2
        `o2,c1,s2,${T0 + 60},4`, // 3
        `o3,c2,s1,yesterday,3`, // 4: bad time
        `o4,c3,s2,${T0 + 30},2`, // 5: out of order
        `o5,c3,s2,${T0 + 30},2`, // 6: out of order, duplicate of 5
        `o5,c4,s9,${T0 + 90},1`, // 7: duplicate id, unknown item
        `"o6,c4,s1,${T0 + 95}`, // 8: unclosed quote to the end
      ].join('\n') + '\n',
    );
    const cat = await readCatalogue(catalogue);
    assert.deepEqual([...cat.entries.keys()], ['s1', 's2']);
    assert.deepEqual(cat.entries.get('s2'), { title: 'Blue "hat"', categories: ['hats', 'blue'] });
    assert.deepEqual(
      cat.problems.list().map((p) => [p.kind, p.count, p.lines]),
      [
        ['catalogue-bad-value', 1, [5]],
        ['catalogue-duplicate-id', 1, [4]],
      ],
    );
    const file = await readOwnFile(path, { map: { user: 'customer', item: 'sku', time: 'ts', id: 'order' }, timeFormat: 'auto', catalogue: cat, check });
    assert.deepEqual(
      file.problems.list().map((p) => [p.kind, p.count, p.lines]),
      [
        ['unreadable', 1, [8]],
        ['bad-value', 1, [4]],
        ['time-order', 2, [5, 6]],
        ['duplicate-row', 1, [6]],
        ['duplicate-id', 1, [7]],
        ['unknown-item', 1, [7]],
      ],
    );
    const first = new Map(file.problems.list().map((p) => [p.kind, p.first]));
    assert.match(first.get('bad-value')!, /^line 4: time \(column ts\) "yesterday"/);
    assert.match(first.get('time-order')!, /^line 5: time 2024-01-01T00:00:30\.000Z is before line 3's 2024-01-01T00:01:00\.000Z/);
    assert.equal(first.get('duplicate-row'), 'line 6: the same event as line 5');
    assert.match(first.get('unknown-item')!, /item s9 is not in .*items\.csv/);
    assert.equal(file.events.length, 5, 'rows out of order, duplicates and unknown items are still events');
    assert.deepEqual(
      inTimeOrder(file.events).map((e) => e.eventId),
      ['o1', 'o4', 'o5', 'o2', 'o5'],
    );
    const items = catalogueItems(cat, file.events);
    assert.deepEqual(
      items.map((i) => [i.itemId, i.title, i.categories, i.timestampMs]),
      [
        ['s1', 'Red shoe', ['shoes', 'red'], T0 * 1000],
        ['s2', 'Blue "hat"', ['hats', 'blue'], (T0 + 30) * 1000],
      ],
    );
  });

  it('JSON lines with their own keys; the ingest checks make bad values too', async () => {
    const path = join(dir, 'events.jsonl');
    await writeFile(
      path,
      [
        JSON.stringify({ who: 'u1', what: 7, when: '2024-01-01T00:00:00Z', kind: 'purchase', price: 9.5 }),
        '{oops',
        JSON.stringify({ who: 'u2', what: 'i1', when: '2024-01-01T00:01:00Z', kind: 'view' }),
        JSON.stringify({ who: 'u\u0001', what: 'i1', when: '2024-01-01T00:02:00Z' }),
        JSON.stringify({ who: 'u3', what: 'i1', when: '2030-01-01T00:00:00Z' }),
      ].join('\n'),
    );
    const file = await readOwnFile(path, { map: { user: 'who', item: 'what', time: 'when', type: 'kind', value: 'price' }, timeFormat: 'iso', catalogue: null, check });
    assert.deepEqual(
      file.events.map((e) => [e.userId, e.itemId, e.type, e.value]),
      [
        ['u1', '7', 'purchase', 9.5],
        ['u2', 'i1', 'view', null],
      ],
    );
    assert.deepEqual(
      file.problems.list().map((p) => [p.kind, p.lines]),
      [
        ['unreadable', [2]],
        ['bad-value', [4, 5]],
      ],
    );
    assert.match(file.problems.list()[1]!.first, /userId contains control characters \(BAD_ID\)/);
  });

  it('refuses a file of unknown kind and a map that does not fit the header', async () => {
    await assert.rejects(readOwnFile(join(dir, 'x.xlsx'), { map: {}, timeFormat: 'auto', catalogue: null }), (e: unknown) => e instanceof FatalError && e.code === 'IMPORT_FORMAT');
    const path = join(dir, 'nouser.csv');
    await writeFile(path, 'client,item,time\nc1,i1,1\n');
    await assert.rejects(readOwnFile(path, { map: {}, timeFormat: 'auto', catalogue: null }), /has no user column \(columns: client, item, time\)/);
    const dup = join(dir, 'dup.csv');
    await writeFile(dup, 'user,user,item,time\n');
    await assert.rejects(readOwnFile(dup, { map: {}, timeFormat: 'auto', catalogue: null }), (e: unknown) => e instanceof FatalError && e.code === 'TABLE_HEADER');
  });
});
