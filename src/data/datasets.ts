import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FatalError } from '../errors/index.ts';
import type { LoadedDataset } from './files.ts';
import { loadLastFm } from './lastfm.ts';
import { loadMovieLens } from './movielens.ts';

/**
 * Finds a public data set by name or path and loads it. The data sets are shared between the project's
 * checkouts and never copied into the repository (their licenses forbid redistribution): by name they live in
 * `../shared/datasets/` next to the repository root.
 */

/** Data sets known by name, with their folder under `shared/datasets/`. */
export const KNOWN_DATASETS = {
  'ml-100k': { dir: 'ml-100k', format: 'movielens' },
  lastfm: { dir: 'lastfm-hetrec2011-2k', format: 'lastfm' },
} as const;

export type DatasetName = keyof typeof KNOWN_DATASETS;
export type DatasetFormat = 'movielens' | 'lastfm';

/** A loaded data set and where it came from. */
export interface ResolvedDataset extends LoadedDataset {
  /** The name it was asked for, or the absolute path. */
  readonly name: string;
  readonly format: DatasetFormat;
  /** Absolute directory it was read from. */
  readonly dir: string;
}

export interface ResolveOptions {
  /** Repository root that names resolve against. @default the root of this checkout, from `import.meta.url` */
  readonly repoRoot?: string;
}

/** Files whose presence identifies a format, checked in this order. */
const FORMAT_MARKERS: ReadonlyArray<{ format: DatasetFormat; files: readonly string[] }> = [
  { format: 'movielens', files: ['u.data', 'u.item', 'u.genre'] },
  { format: 'lastfm', files: ['user_artists.dat', 'artists.dat'] },
];

/** The repository root of this checkout (two levels above `src/data/`). */
export function repoRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url));
}

/** Absolute directory of a named data set; whether it exists is not checked. */
export function datasetDir(name: DatasetName, root: string = repoRoot()): string {
  return resolve(root, '..', 'shared', 'datasets', KNOWN_DATASETS[name].dir);
}

export function isDatasetName(text: string): text is DatasetName {
  return Object.hasOwn(KNOWN_DATASETS, text);
}

/**
 * Loads `ml-100k` or `lastfm` by name, or any directory in one of their formats by path (relative paths
 * resolve against the working directory; the format is recognised from the files present).
 *
 * Throws `FatalError`: `DATASET_MISSING` naming the directory it looked in, or `DATASET_UNKNOWN_FORMAT`
 * naming the files it looked for.
 */
export async function resolveDataset(
  nameOrPath: string,
  options: ResolveOptions = {},
): Promise<ResolvedDataset> {
  const named = isDatasetName(nameOrPath);
  const dir = named ? datasetDir(nameOrPath, options.repoRoot) : resolve(nameOrPath);
  if (!(await isDirectory(dir))) {
    const what = named ? `data set "${nameOrPath}"` : 'data set directory';
    throw new FatalError('DATASET_MISSING', `${what} not found at ${dir}`);
  }
  const format = named ? KNOWN_DATASETS[nameOrPath].format : await detectFormat(dir);
  const loaded = format === 'movielens' ? await loadMovieLens(dir) : await loadLastFm(dir);
  return { ...loaded, name: named ? nameOrPath : dir, format, dir };
}

/** The format of a directory, from its marker files. */
export async function detectFormat(dir: string): Promise<DatasetFormat> {
  for (const { format, files } of FORMAT_MARKERS) {
    const present = await Promise.all(files.map((file) => isFile(join(dir, file))));
    if (present.every(Boolean)) return format;
  }
  const expected = FORMAT_MARKERS.map(({ format, files }) => `${format}: ${files.join(', ')}`).join('; ');
  throw new FatalError('DATASET_UNKNOWN_FORMAT', `no known data set format in ${dir} (expected ${expected})`);
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}
