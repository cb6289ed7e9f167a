import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { datasetDir } from '../../src/data/datasets.ts';
import { loadLastFm } from '../../src/data/lastfm.ts';
import type { Interaction } from '../../src/domain/events.ts';

const LASTFM_DIR = datasetDir('lastfm');
const missing = existsSync(join(LASTFM_DIR, 'user_artists.dat'))
  ? false
  : `Last.fm 2k not found at ${LASTFM_DIR}`;
if (missing) console.log(`# skipping the lastfm suite: ${missing}`);

/** Each user's events must come in descending play count: the pseudo-time's defining property. */
function assertPlayCountOrder(interactions: readonly Interaction[]): void {
  const last = new Map<string, number>();
  for (const i of interactions) {
    const previous = last.get(i.userId);
    if (previous !== undefined) assert.ok(i.value! <= previous, `${i.eventId} out of play-count order`);
    last.set(i.userId, i.value!);
  }
}

describe('loadLastFm on hetrec2011-lastfm-2k', { skip: missing }, () => {
  let data: Awaited<ReturnType<typeof loadLastFm>>;
  before(async () => {
    data = await loadLastFm(LASTFM_DIR);
  });

  it('has the published counts', () => {
    assert.equal(data.interactions.length, 92_834);
    assert.equal(new Set(data.interactions.map((i) => i.userId)).size, 1892);
    assert.equal(data.items.length, 17_632);
    assert.equal(new Set(data.interactions.map((i) => `${i.userId}/${i.itemId}`)).size, 92_834);
  });

  it('synthesises strictly increasing timestamps in descending play count per user', () => {
    for (let k = 1; k < data.interactions.length; k++) {
      assert.ok(data.interactions[k]!.timestampMs > data.interactions[k - 1]!.timestampMs);
    }
    assertPlayCountOrder(data.interactions);
    assert.equal(new Set(data.interactions.map((i) => i.eventId)).size, data.interactions.length);
    assert.ok(data.interactions.every((i) => i.type === 'view' && /^lfm-\d+$/.test(i.eventId)));
  });

  it('keeps the file values: the first row is user 2, artist 51, 13883 plays', () => {
    const first = data.interactions.find((i) => i.eventId === 'lfm-2');
    assert.equal(first?.userId, '2');
    assert.equal(first?.itemId, '51');
    assert.equal(first?.value, 13_883);
    const artist = data.items.find((item) => item.itemId === '1');
    assert.equal(artist?.title, 'MALICE MIZER');
    assert.deepEqual(artist?.categories, []);
  });

  it('is deterministic for a seed and changes with it', async () => {
    const again = await loadLastFm(LASTFM_DIR);
    assert.deepEqual(again.interactions.slice(0, 500), data.interactions.slice(0, 500));
    const other = await loadLastFm(LASTFM_DIR, { seed: 'other' });
    assert.notDeepEqual(
      other.interactions.slice(0, 500).map((i) => i.eventId),
      data.interactions.slice(0, 500).map((i) => i.eventId),
    );
  });
});

describe('loadLastFm on fixtures', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'starstream-lastfm-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads CRLF plays and UTF-8 names, interleaving users round-robin', async () => {
    await writeFile(
      join(dir, 'artists.dat'),
      'id\tname\turl\tpictureURL\n1\tSigur Rós\tu1\tp1\n2\tBjörk\tu2\tp2\n3\tMúm\t\t\n',
    );
    await writeFile(
      join(dir, 'user_artists.dat'),
      'userID\tartistID\tweight\r\n10\t1\t5\r\n10\t2\t50\r\n10\t3\t50\r\n20\t3\t7\r\n',
    );
    const { items, interactions } = await loadLastFm(dir, { startMs: 1000, stepMs: 10 });
    assert.deepEqual(
      items.map((i) => i.title),
      ['Sigur Rós', 'Björk', 'Múm'],
    );
    assert.deepEqual(items[2]!.attributes, {});
    assert.deepEqual(
      interactions.map((i) => i.timestampMs),
      [1000, 1010, 1020, 1030],
    );
    // Round 0 holds both users' top artists; user 10's tie (50, 50) keeps file order.
    assert.deepEqual(new Set(interactions.slice(0, 2).map((i) => i.eventId)), new Set(['lfm-3', 'lfm-5']));
    assert.deepEqual(
      interactions.filter((i) => i.userId === '10').map((i) => i.eventId),
      ['lfm-3', 'lfm-4', 'lfm-2'],
    );
    assertPlayCountOrder(interactions);
    assert.equal(items.find((i) => i.itemId === '1')!.timestampMs, 1030);
  });

  it('refuses plays of unknown artists, naming the line', async () => {
    await writeFile(join(dir, 'artists.dat'), 'id\tname\turl\tpictureURL\n1\tA\tu\tp\n');
    await writeFile(join(dir, 'user_artists.dat'), 'userID\tartistID\tweight\r\n10\t1\t5\r\n10\t9\t3\r\n');
    await assert.rejects(loadLastFm(dir), /user_artists\.dat:3: unknown artist 9/);
  });
});
