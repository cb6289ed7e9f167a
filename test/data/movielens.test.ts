import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { datasetDir } from '../../src/data/datasets.ts';
import { loadMovieLens } from '../../src/data/movielens.ts';
import { FatalError } from '../../src/errors/index.ts';

const ML_DIR = datasetDir('ml-100k');
const missing = existsSync(join(ML_DIR, 'u.data')) ? false : `MovieLens 100K not found at ${ML_DIR}`;
if (missing) console.log(`# skipping the ml-100k suite: ${missing}`);

describe('loadMovieLens on ml-100k', { skip: missing }, () => {
  let data: Awaited<ReturnType<typeof loadMovieLens>>;
  before(async () => {
    data = await loadMovieLens(ML_DIR);
  });

  it('has the published counts', () => {
    assert.equal(data.interactions.length, 100_000);
    assert.equal(new Set(data.interactions.map((i) => i.userId)).size, 943);
    assert.equal(data.items.length, 1682);
    assert.equal(new Set(data.interactions.map((i) => i.itemId)).size, 1682);
  });

  it('sorts by time, keeping file order for ties', () => {
    const line = (eventId: string): number => Number(eventId.slice(3));
    for (let k = 1; k < data.interactions.length; k++) {
      const a = data.interactions[k - 1]!;
      const b = data.interactions[k]!;
      assert.ok(
        a.timestampMs < b.timestampMs ||
          (a.timestampMs === b.timestampMs && line(a.eventId) < line(b.eventId)),
      );
    }
    assert.equal(data.interactions[0]!.timestampMs, Date.UTC(1997, 8, 20, 3, 5, 10));
    assert.equal(data.interactions.at(-1)!.timestampMs, Date.UTC(1998, 3, 22, 23, 10, 38));
  });

  it('maps rows to rating interactions with line-number ids', () => {
    const first = data.interactions.find((i) => i.eventId === 'ml-1');
    assert.deepEqual(first, {
      eventId: 'ml-1',
      userId: '196',
      itemId: '242',
      type: 'rating',
      value: 3,
      timestampMs: 881_250_949_000,
      context: {},
    });
    assert.equal(new Set(data.interactions.map((i) => i.eventId)).size, 100_000);
    const stars = new Map<number | null, number>();
    for (const i of data.interactions) stars.set(i.value, (stars.get(i.value) ?? 0) + 1);
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((s) => stars.get(s)),
      [6110, 11370, 27145, 34174, 21201],
    );
  });

  it('decodes Latin-1 titles and names genres', () => {
    const byId = new Map(data.items.map((item) => [item.itemId, item]));
    assert.equal(byId.get('1633')!.title, 'Á köldum klaka (Cold Fever) (1994)');
    assert.deepEqual(byId.get('1')!.categories, ['Animation', "Children's", 'Comedy']);
    assert.equal(byId.get('1')!.attributes.releaseDate, '01-Jan-1995');
    assert.equal(data.items.filter((item) => item.categories.includes('Drama')).length, 725);
    const firstRating = data.interactions.find((i) => i.itemId === '1')!.timestampMs;
    assert.equal(byId.get('1')!.timestampMs, firstRating);
  });
});

describe('loadMovieLens on fixtures', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'starstream-ml-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const write = async (files: Record<string, string | Buffer>): Promise<void> => {
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  };
  const genre = 'unknown|0\nDrama|1\n\n';
  const item = Buffer.concat([
    Buffer.from('7|'),
    Buffer.from('Misérables', 'latin1'),
    Buffer.from('|||url|0|1\n'),
  ]);

  it('keeps same-second ratings in file order and decodes Latin-1', async () => {
    await write({ 'u.genre': genre, 'u.item': item, 'u.data': '1\t7\t5\t20\n2\t7\t4\t10\n3\t7\t3\t10\n' });
    const { items, interactions } = await loadMovieLens(dir);
    assert.deepEqual(
      interactions.map((i) => i.eventId),
      ['ml-2', 'ml-3', 'ml-1'],
    );
    assert.equal(items[0]!.title, 'Misérables');
    assert.deepEqual(items[0]!.categories, ['Drama']);
    assert.deepEqual(items[0]!.attributes, { imdbUrl: 'url' });
    assert.equal(items[0]!.timestampMs, 10_000);
  });

  it('names the file and line of a malformed row', async () => {
    await write({ 'u.genre': genre, 'u.item': item, 'u.data': '1\t7\t5\t20\n2\t7\tfour\t10\n' });
    await assert.rejects(loadMovieLens(dir), (err: unknown) => {
      assert.ok(err instanceof FatalError);
      assert.equal(err.code, 'DATASET_MALFORMED');
      assert.match(err.message, /u\.data:2:/);
      return true;
    });
  });

  it('refuses ratings of items missing from u.item', async () => {
    await write({ 'u.genre': genre, 'u.item': item, 'u.data': '1\t8\t5\t20\n' });
    await assert.rejects(loadMovieLens(dir), /u\.data:1: item 8 is not in u\.item/);
  });

  it('reports a missing directory with its path', async () => {
    const nowhere = join(dir, 'nowhere');
    await assert.rejects(loadMovieLens(nowhere), (err: unknown) => {
      assert.ok(err instanceof FatalError);
      assert.equal(err.code, 'DATASET_MISSING');
      assert.ok(err.message.includes(nowhere));
      return true;
    });
  });
});
