import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { datasetDir, detectFormat, repoRoot, resolveDataset } from '../../src/data/datasets.ts';
import { FatalError } from '../../src/errors/index.ts';

const ML_DIR = datasetDir('ml-100k');
const mlMissing = existsSync(ML_DIR) ? false : `MovieLens 100K not found at ${ML_DIR}`;
if (mlMissing) console.log(`# skipping the named-data-set test: ${mlMissing}`);

describe('resolveDataset', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'starstream-datasets-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds named data sets next to the repository root', () => {
    assert.ok(existsSync(join(repoRoot(), 'package.json')));
    assert.equal(datasetDir('ml-100k', '/repo/main'), '/repo/shared/datasets/ml-100k');
    assert.equal(datasetDir('lastfm', '/repo/main'), '/repo/shared/datasets/lastfm-hetrec2011-2k');
  });

  it('loads ml-100k by name', { skip: mlMissing }, async () => {
    const data = await resolveDataset('ml-100k');
    assert.equal(data.format, 'movielens');
    assert.equal(data.dir, ML_DIR);
    assert.equal(data.interactions.length, 100_000);
  });

  it('loads a directory by path, recognising its format', async () => {
    const ml = join(dir, 'tiny-ml');
    await mkdir(ml);
    await writeFile(join(ml, 'u.genre'), 'Drama|0\n');
    await writeFile(join(ml, 'u.item'), '1|A (1990)|||u|1\n');
    await writeFile(join(ml, 'u.data'), '5\t1\t4\t100\n');
    const data = await resolveDataset(ml);
    assert.equal(data.format, 'movielens');
    assert.equal(data.name, ml);
    assert.equal(data.interactions[0]!.timestampMs, 100_000);
  });

  it('names the path it looked in when a data set is missing', async () => {
    const root = join(dir, 'checkout');
    await assert.rejects(resolveDataset('lastfm', { repoRoot: root }), (err: unknown) => {
      assert.ok(err instanceof FatalError);
      assert.equal(err.code, 'DATASET_MISSING');
      assert.ok(err.message.includes(join(dir, 'shared', 'datasets', 'lastfm-hetrec2011-2k')), err.message);
      return true;
    });
    await assert.rejects(resolveDataset(join(dir, 'nope')), /data set directory not found at .*nope/);
  });

  it('says which files it expected in a directory of unknown format', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await assert.rejects(detectFormat(empty), (err: unknown) => {
      assert.ok(err instanceof FatalError);
      assert.equal(err.code, 'DATASET_UNKNOWN_FORMAT');
      assert.match(err.message, /u\.data/);
      return true;
    });
  });
});
