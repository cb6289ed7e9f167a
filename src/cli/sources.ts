import { readdir, stat } from 'node:fs/promises';
import { KNOWN_DATASETS, isDatasetName, resolveDataset, type ResolvedDataset } from '../data/datasets.ts';
import { nearestName } from '../config/fields.ts';
import { InputError } from './usage.ts';

/**
 * The data sets a command names (`eval --dataset`, `cases export --dataset`, `replay SOURCE`), checked before
 * anything loads: an unknown name lists the known ones, a file where a directory is due says so.
 */

const KNOWN = Object.keys(KNOWN_DATASETS);

/** What a path is on disk, or 'missing'. */
export async function pathKind(path: string): Promise<'file' | 'directory' | 'missing' | 'other'> {
  return stat(path).then(
    (s) => (s.isFile() ? 'file' : s.isDirectory() ? 'directory' : 'other'),
    () => 'missing' as const,
  );
}

/**
 * `ml-100k`, `lastfm` or a data set directory, loaded. Throws `InputError` for a name that is neither known nor
 * a directory (listing the known data sets and the nearest name) and for a file; a directory without a known
 * format, or a known data set not fetched yet, is the loader's `FatalError` (an input error too).
 */
export async function loadDatasetArg(nameOrPath: string, what: string): Promise<ResolvedDataset> {
  if (!isDatasetName(nameOrPath)) {
    const kind = await pathKind(nameOrPath);
    if (kind === 'missing') {
      const near = nearestName(nameOrPath, KNOWN);
      throw new InputError(
        `${what}: no data set "${nameOrPath}": the known data sets are ${KNOWN.join(', ')}${near ? ` (did you mean ${near}?)` : ''}, ` +
          'or give a directory in MovieLens or Last.fm format',
      );
    }
    if (kind !== 'directory') {
      throw new InputError(`${what}: ${nameOrPath} is a ${kind === 'file' ? 'file' : 'special file'}, not a data set directory (known data sets: ${KNOWN.join(', ')})`);
    }
    if ((await readdir(nameOrPath)).length === 0) {
      throw new InputError(`${what}: ${nameOrPath} is an empty directory; a data set directory holds MovieLens (u.data, u.item) or Last.fm (user_artists.dat, artists.dat) files`);
    }
  }
  return resolveDataset(nameOrPath);
}
