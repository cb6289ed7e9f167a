import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FatalError } from '../errors/index.ts';
import { MANIFEST_FILE, parseManifest, type DatasetFile } from '../teacher/dataset/writer.ts';

/**
 * What the distillation loop reads: the teacher's labelled-trajectory data set (`src/teacher/dataset/writer.ts`:
 * final parts listed in `manifest.json`; parts still being written, `.open`, are never read) and, optionally,
 * an outcome-only case file written by `starstream cases export`. `scanSources` takes a snapshot of both
 * (which parts exist, a content hash of the case file) so that one run reads exactly what it decided on,
 * and the cursor can tell what is new next time.
 */

export interface SourcePaths {
  /** Labelled-trajectory data set directory; null or missing = none yet. */
  readonly trajectoriesDir: string | null;
  /** Outcome-only case file; null = none. */
  readonly casesFile: string | null;
}

export interface CaseFileState {
  readonly path: string;
  readonly sha256: string;
  readonly records: number;
}

export interface SourceState {
  /** Final parts the manifest lists (kept and rejected), in manifest order. */
  readonly parts: readonly DatasetFile[];
  readonly casesFile: CaseFileState | null;
}

export async function scanSources(paths: SourcePaths): Promise<SourceState> {
  const parts = paths.trajectoriesDir ? await readDatasetParts(paths.trajectoriesDir) : [];
  let casesFile: CaseFileState | null = null;
  if (paths.casesFile) {
    if (!existsSync(paths.casesFile)) throw new FatalError('DISTILL_CASES_MISSING', `distill.casesFile ${paths.casesFile} does not exist`);
    // One pass: a hash of the lines (the file's identity for the cursor) and the count of non-blank ones.
    const hash = createHash('sha256');
    let records = 0;
    for await (const line of createInterface({ input: createReadStream(paths.casesFile, 'utf8'), crlfDelay: Infinity })) {
      hash.update(`${line}\n`);
      if (line.trim() !== '') records++;
    }
    casesFile = { path: paths.casesFile, sha256: hash.digest('hex'), records };
  }
  return { parts, casesFile };
}

/** The final parts of a data set; an absent directory or manifest is an empty data set (the teacher has not written yet). */
async function readDatasetParts(dir: string): Promise<DatasetFile[]> {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) return [];
  // A manifest that is not one (damaged, another version, file entries that are not file names in `dir`) is
  // refused here with its place, rather than failing later with a TypeError or reading outside the directory.
  const manifest = parseManifest(await readFile(path, 'utf8'), path, { invalid: 'DISTILL_DATASET_INVALID', version: 'DISTILL_DATASET_INVALID' });
  for (const f of manifest.files) {
    if (!existsSync(join(dir, f.path))) throw new FatalError('DISTILL_DATASET_INVALID', `${path} lists ${f.path}, which is not there`);
  }
  return [...manifest.files];
}

/** Calls `fn` with every non-blank line of a JSON-lines file, parsed; a bad line throws with its place. */
export async function forEachJsonLine(path: string, fn: (value: unknown, where: string) => void | Promise<void>): Promise<void> {
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (cause) {
      throw new FatalError('DISTILL_INPUT_INVALID', `${path}:${n}: not JSON`, { cause });
    }
    await fn(value, `${path}:${n}`);
  }
}
