import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * The recommendations file of an in-process run (`demo`, `replay`), bounded: JSON lines into `path` until the
 * next line would take it past `limitBytes`, then `path` becomes `path.1` (replacing the one before) and a new
 * `path` starts. At most twice the limit is ever on disk, and the newest lines are always in `path`. A
 * recommendation is ~3 KB of JSON, so an unbounded 200k-event run wrote 659 MB.
 */

/** `--out-limit`'s default: 256 MiB per file, so at most 512 MiB with the rotated one. */
export const DEFAULT_OUT_LIMIT_BYTES = 256 * 1024 * 1024;

/** What was written: lines in each file, and lines dropped with a rotated file that was replaced. */
export interface OutputFileSummary {
  readonly path: string;
  readonly limitBytes: number;
  readonly lines: number;
  /** Lines in `path.1`; 0 when it never rotated. */
  readonly rotatedLines: number;
  readonly droppedLines: number;
}

export class BoundedOutputFile {
  private stream: WriteStream | null = null;
  private bytes = 0;
  private lines = 0;
  private rotatedLines = 0;
  private droppedLines = 0;

  /** @param limitBytes the most one file holds; 0 = unbounded */
  private constructor(
    readonly path: string,
    readonly limitBytes: number,
  ) {}

  /** Creates the folder and the file; a `path.1` left by an earlier run is removed so the summary is this run's. */
  static async open(path: string, limitBytes: number): Promise<BoundedOutputFile> {
    await mkdir(dirname(path), { recursive: true });
    await rm(rotated(path), { force: true });
    const file = new BoundedOutputFile(path, limitBytes);
    file.stream = createWriteStream(path);
    return file;
  }

  /** Appends one line (a newline is added); rotates first when the line would pass the limit. */
  async writeLine(text: string): Promise<void> {
    const line = `${text}\n`;
    const size = Buffer.byteLength(line);
    if (this.limitBytes > 0 && this.bytes > 0 && this.bytes + size > this.limitBytes) await this.rotate();
    this.stream!.write(line);
    this.bytes += size;
    this.lines++;
  }

  /** What was written so far. */
  summary(): OutputFileSummary {
    const { path, limitBytes, lines, rotatedLines, droppedLines } = this;
    return { path, limitBytes, lines, rotatedLines, droppedLines };
  }

  async close(): Promise<OutputFileSummary> {
    await end(this.stream!);
    return this.summary();
  }

  private async rotate(): Promise<void> {
    await end(this.stream!);
    this.droppedLines += this.rotatedLines;
    this.rotatedLines = this.lines;
    await rename(this.path, rotated(this.path));
    this.stream = createWriteStream(this.path);
    this.bytes = 0;
    this.lines = 0;
  }
}

/** `recommendations written to` in a summary: the file, and what rotation did when it did anything. */
export function describeOutput(s: OutputFileSummary): string {
  if (s.rotatedLines === 0) return s.path;
  const n = (x: number): string => x.toLocaleString('en-US');
  const dropped = s.droppedLines > 0 ? `, the ${n(s.droppedLines)} before those dropped` : '';
  return `${s.path} (the last ${n(s.lines)}; ${n(s.rotatedLines)} before them in ${rotated(s.path)}${dropped}: --out-limit ${formatBytes(s.limitBytes)} per file)`;
}

/** `--out-limit`: `0` (unbounded), bytes, or a size with a unit (`64MB`, `1.5GiB`, `500k`). */
export function parseByteSize(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?)(b?)\s*$/i.exec(text);
  if (!match) return null;
  const [, number, unit, binary] = match;
  const power = { '': 0, k: 1, m: 2, g: 3 }[unit!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const base = binary || unit === '' ? 1024 : 1000;
  const bytes = Math.round(Number(number) * base ** power);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** A size as `--out-limit` would take it: the largest unit that divides it (GiB, GB, MiB, MB, KiB, kB), else bytes. */
export function formatBytes(bytes: number): string {
  const units: [number, string][] = [[1024 ** 3, 'GiB'], [1e9, 'GB'], [1024 ** 2, 'MiB'], [1e6, 'MB'], [1024, 'KiB'], [1e3, 'kB']];
  for (const [size, name] of units) if (bytes >= size && bytes % size === 0) return `${bytes / size} ${name}`;
  return `${bytes.toLocaleString('en-US')} B`;
}

const rotated = (path: string): string => `${path}.1`;

function end(stream: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('error', reject);
    stream.end(() => resolve());
  });
}
