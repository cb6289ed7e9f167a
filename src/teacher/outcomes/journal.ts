import { dirname } from 'node:path';
import { FatalError } from '../../errors/index.ts';
import { fileError, nodeFileSystem, writeAtomically, type FileSystem } from '../../util/files.ts';


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
 * - A failed append or compaction (a full disk: `TransientError` `DISK_FULL`, see `fileError`) rejects that
 *   call only: whatever it wrote is cut off again (the journal ends after its last acknowledged line, so the
 *   next append never continues a torn one), and later calls run as usual.
 */
export class Journal<E> {
  private appended = 0;
  private tail: Promise<void> = Promise.resolve();
  /** Size of the acknowledged lines; the file is cut back to it after a failed append. */
  private bytes: number;
  /** A failed append could not be cut back yet: the next one does it first. */
  private torn = false;

  private constructor(
    readonly path: string,
    entriesAtOpen: number,
    bytesAtOpen: number,
    private readonly fs: FileSystem,
  ) {
    this.appended = entriesAtOpen;
    this.bytes = bytesAtOpen;
  }

  /** Opens (creating the directory) and replays the journal into `onEntry`. */
  static async open<E>(
    path: string,
    onEntry: (entry: E) => void,
    options: { onTornTail?: (bytes: number) => void; fs?: FileSystem } = {},
  ): Promise<Journal<E>> {
    const fs = options.fs ?? nodeFileSystem;
    await fs.mkdir(dirname(path));
    let text: string;
    try {
      text = await fs.readFile(path);
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
      await fs.truncate(path, good);
    }
    return new Journal<E>(path, count, good, fs);
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
      try {
        if (this.torn) await this.cutBack();
        await this.fs.appendFile(this.path, text);
        await this.fs.fsync(this.path);
      } catch (err) {
        this.torn = true;
        await this.cutBack().catch(() => undefined);
        throw fileError(err, 'append to', this.path);
      }
      this.bytes += Buffer.byteLength(text, 'utf8');
      this.appended += entries.length;
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Replaces the journal with `snapshot` (the pending state as entries), atomically. */
  compact(snapshot: readonly E[]): Promise<void> {
    const run = this.tail.then(async () => {
      const text = snapshot.map((e) => JSON.stringify(e) + '\n').join('');
      try {
        await writeAtomically(this.path, text, this.fs);
      } catch (err) {
        throw fileError(err, 'compact', this.path);
      }
      this.bytes = Buffer.byteLength(text, 'utf8');
      this.torn = false;
      this.appended = snapshot.length;
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Resolves when every append and compaction so far has settled (each call reports its own failure). */
  flush(): Promise<void> {
    return this.tail;
  }

  /** Cuts the file back to its acknowledged lines (a failed append may have left part of its text). */
  private async cutBack(): Promise<void> {
    try {
      await this.fs.truncate(this.path, this.bytes);
    } catch (err) {
      // Nothing to cut when the failed append never created the file.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.torn = false;
  }
}
