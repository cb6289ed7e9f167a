import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import type { Interaction, Item } from '../domain/events.ts';
import { FatalError } from '../errors/index.ts';

/**
 * Small helpers shared by the data-set loaders. A data set on disk is part of the installation, not stream
 * input: a missing or malformed file is a `FatalError` (stop loudly, name the file and line), never a DLQ case.
 */

/** What every data-set loader returns: the catalogue and the interactions in replay order. */
export interface LoadedDataset {
  readonly items: Item[];
  readonly interactions: Interaction[];
}

/** Text encodings the public data sets use. `latin1` is true ISO-8859-1 (Node's Buffer), not windows-1252. */
export type TextEncoding = 'utf8' | 'latin1';

/** Reads `dir/name` as text; a missing file becomes `DATASET_MISSING` with the full path. */
export async function readDatasetFile(dir: string, name: string, encoding: TextEncoding): Promise<string> {
  const path = join(dir, name);
  try {
    return (await readFile(path)).toString(encoding);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new FatalError('DATASET_MISSING', `data set file not found: ${path}`, { cause });
    }
    throw new FatalError('DATASET_UNREADABLE', `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Splits text into lines, accepting LF and CRLF endings alike, with no phantom empty line after a final
 * newline. Line `k` of the result is line `k + 1` of the file, which loaders use for ids and error messages.
 */
export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k] as string;
    if (line.endsWith('\r')) lines[k] = line.slice(0, -1);
  }
  return lines;
}

/** The error for a line a loader cannot read; `line` is 1-based. */
export function malformedLine(file: string, line: number, why: string): FatalError {
  return new FatalError('DATASET_MALFORMED', `${file}:${line}: ${why}`);
}

/** Parses a base-10 integer field strictly (no blanks, no fractions, no trailing junk); NaN otherwise. */
export function parseIntField(text: string): number {
  return /^-?\d+$/.test(text) ? Number(text) : Number.NaN;
}

/**
 * Opens a file for streaming, turning a failure to open into one clear error (`code`, the path named) before
 * any line is read.
 */
export async function openForReading(path: string, code: string): Promise<Readable> {
  const stream = createReadStream(path);
  try {
    await once(stream, 'open');
  } catch (cause) {
    throw new FatalError(code, `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  return stream;
}
