import { closeSync, fsyncSync, openSync } from 'node:fs';
import { appendFile, mkdir, open, readFile, rename, truncate, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FatalError } from '../../errors/index.ts';

/**
 * A small append-only journal of JSON lines with snapshot compaction: how the side stream's joins keep what
 * is pending across restarts without a database.
 *
 * - `append` writes whole lines and fsyncs before it resolves, so an entry that was acknowledged survives a
 *   crash. Callers append before they let the log commit the offsets that led to the entries.
 * - `compact(snapshot)` writes the current state as a new journal next to the old one (`.tmp`), fsyncs it and
 *   renames it over the old one: a crash leaves either the old journal or the new one, never a mix.
 * - `open` replays every entry in order. A crash during an append can leave a torn last line (no newline, or
 *   not JSON): it was never acknowledged, so it is cut off (and reported through `onTornTail`). A bad line
 *   anywhere else means the file was damaged outside starstream: `FatalError` `JOURNAL_CORRUPT`, because
 *   guessing would silently drop cases.
 */
export class Journal<E> {
  private appended = 0;
  private tail: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    entriesAtOpen: number,
  ) {
    this.appended = entriesAtOpen;
  }

  /** Opens (creating the directory) and replays the journal into `onEntry`. */
  static async open<E>(
    path: string,
    onEntry: (entry: E) => void,
    options: { onTornTail?: (bytes: number) => void } = {},
  ): Promise<Journal<E>> {
    await mkdir(dirname(path), { recursive: true });
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      text = '';
    }
    const lines = text.split('\n');
    // The text after the last newline is a line that was still being written (normally empty).
    const unterminated = lines.pop() ?? '';
    let good = 0;
    let count = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      let entry: E;
      try {
        entry = JSON.parse(line) as E;
      } catch (cause) {
        if (i === lines.length - 1 && unterminated === '') {
          // The last line has its newline but not its content (a torn write the filesystem reordered).
          break;
        }
        throw new FatalError('JOURNAL_CORRUPT', `${path}: line ${i + 1} is not JSON`, { cause });
      }
      onEntry(entry);
      good += Buffer.byteLength(line, 'utf8') + 1;
      count++;
    }
    const bytes = Buffer.byteLength(text, 'utf8');
    if (good < bytes) {
      options.onTornTail?.(bytes - good);
      await truncate(path, good);
    }
    return new Journal<E>(path, count);
  }

  /** Entries in the file since it was last compacted. */
  get entries(): number {
    return this.appended;
  }

  /** Appends entries as lines and fsyncs; appends run one after another in call order. */
  append(entries: readonly E[]): Promise<void> {
    if (entries.length === 0) return this.tail;
    const text = entries.map((e) => JSON.stringify(e)).join('\n') + '\n';
    const run = this.tail.then(async () => {
      await appendFile(this.path, text, 'utf8');
      await fsyncFile(this.path);
      this.appended += entries.length;
    });
    this.tail = run;
    return run;
  }

  /** Replaces the journal with `snapshot` (the pending state as entries), atomically. */
  compact(snapshot: readonly E[]): Promise<void> {
    const run = this.tail.then(async () => {
      await writeAtomically(this.path, snapshot.map((e) => JSON.stringify(e) + '\n').join(''));
      this.appended = snapshot.length;
    });
    this.tail = run;
    return run;
  }

  /** Resolves when every append and compaction so far is on disk. */
  flush(): Promise<void> {
    return this.tail;
  }
}

/** Writes `path` through a temp file, fsync and rename, and fsyncs the directory so the rename is durable. */
export async function writeAtomically(path: string, content: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, content);
  await fsyncFile(tmp);
  await rename(tmp, path);
  fsyncDirectory(dirname(path));
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function fsyncDirectory(dir: string): void {
  // Directories cannot be opened for fsync on Windows; there the rename is as durable as NTFS makes it.
  if (process.platform === 'win32') return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
