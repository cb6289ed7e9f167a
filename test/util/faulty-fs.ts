/**
 * A `FileSystem` (src/util/files.ts) over the real one that runs out of space on demand: the fault injection of
 * the disk-full tests. The disk is "full" from the `failAt`-th mutating call on (or from `fill()`), until
 * `free()`: then every `appendFile`/`writeFile` writes part of its data and throws ENOSPC (as `write(2)` does
 * when the device fills mid-buffer), every `fsync` throws ENOSPC (delayed allocation reports it there), and
 * `rename` throws ENOSPC (a directory that needs a new block). Truncating and unlinking free space, and
 * creating a directory that exists takes none, so they work; reads always work.
 */
import { appendFile, writeFile } from 'node:fs/promises';
import { nodeFileSystem, type FileSystem } from '../../src/util/files.ts';

export type MutatingOp =
  'appendFile' | 'writeFile' | 'rename' | 'fsync' | 'truncate' | 'unlink' | 'fsyncDir' | 'mkdir';

const FAILS_WHEN_FULL: ReadonlySet<MutatingOp> = new Set(['appendFile', 'writeFile', 'rename', 'fsync']);

export function enospc(syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOSPC: no space left on device, ${syscall} '${path}'`), {
    code: 'ENOSPC',
    errno: -28,
    syscall,
    path,
  });
}

export interface FaultyFsOptions {
  /** The disk fills at this mutating call (1-based; counted over every op that would fail when full). */
  readonly failAt?: number;
  /**
   * Only calls whose op is in this list count and fail (default: those that fail when full; naming
   * `truncate` here makes cutting a torn line back fail too).
   */
  readonly ops?: readonly MutatingOp[];
  /** Only calls on paths matching this count and fail. */
  readonly path?: RegExp;
  /** Share of the data a failing write still puts on disk (default 0.5: a torn line). */
  readonly partial?: number;
}

export class FaultyFs implements FileSystem {
  private full = false;
  /** Mutating calls that could fail, so far. */
  calls = 0;
  /** Calls that failed with ENOSPC. */
  failures = 0;
  /** `op path` of every failure, for messages. */
  readonly failed: string[] = [];

  constructor(
    private readonly options: FaultyFsOptions = {},
    private readonly inner: FileSystem = nodeFileSystem,
  ) {}

  get isFull(): boolean {
    return this.full;
  }

  fill(): void {
    this.full = true;
  }

  free(): void {
    this.full = false;
  }

  mkdir(dir: string): Promise<void> {
    return this.mutate('mkdir', dir, () => this.inner.mkdir(dir));
  }
  exists(path: string): Promise<boolean> {
    return this.inner.exists(path);
  }
  readFile(path: string): Promise<string> {
    return this.inner.readFile(path);
  }
  readdir(dir: string): Promise<string[]> {
    return this.inner.readdir(dir);
  }
  appendFile(path: string, text: string): Promise<void> {
    return this.mutate(
      'appendFile',
      path,
      () => this.inner.appendFile(path, text),
      () => appendFile(path, this.part(text)),
    );
  }
  writeFile(path: string, content: string | Uint8Array): Promise<void> {
    return this.mutate(
      'writeFile',
      path,
      () => this.inner.writeFile(path, content),
      () => writeFile(path, this.part(content)),
    );
  }
  rename(from: string, to: string): Promise<void> {
    return this.mutate('rename', from, () => this.inner.rename(from, to));
  }
  truncate(path: string, bytes: number): Promise<void> {
    return this.mutate('truncate', path, () => this.inner.truncate(path, bytes));
  }
  unlink(path: string): Promise<void> {
    return this.mutate('unlink', path, () => this.inner.unlink(path));
  }
  fsync(path: string): Promise<void> {
    return this.mutate('fsync', path, () => this.inner.fsync(path));
  }
  fsyncDir(dir: string): Promise<void> {
    return this.mutate('fsyncDir', dir, () => this.inner.fsyncDir(dir));
  }

  private part(content: string | Uint8Array): Buffer {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
    return bytes.subarray(0, Math.floor(bytes.length * (this.options.partial ?? 0.5)));
  }

  private async mutate(
    op: MutatingOp,
    path: string,
    run: () => Promise<void>,
    torn?: () => Promise<void>,
  ): Promise<void> {
    const o = this.options;
    const counts = (o.ops ? o.ops.includes(op) : FAILS_WHEN_FULL.has(op)) && (!o.path || o.path.test(path));
    if (counts) {
      this.calls++;
      if (o.failAt !== undefined && this.calls === o.failAt) this.full = true;
    }
    if (!counts || !this.full) return run();
    this.failures++;
    this.failed.push(`${op} ${path}`);
    await torn?.();
    throw enospc(op === 'appendFile' || op === 'writeFile' ? 'write' : op, path);
  }
}
