import {
  access,
  appendFile,
  mkdir,
  open,
  readFile,
  readdir,
  rename,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { dirname } from 'node:path';
import { FatalError, StarstreamError, TransientError } from '../errors/index.ts';

/**
 * The file operations of starstream's durable files (the teacher's dataset export and journals), behind a
 * small interface so that a test can make any one of them fail (a full disk mid-line, at a rotation, at a
 * manifest rename) without patching `node:fs`. `nodeFileSystem` is the real one; text is UTF-8.
 */
export interface FileSystem {
  /** Creates the directory and its parents; an existing one is fine. */
  mkdir(dir: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  readFile(path: string): Promise<string>;
  readdir(dir: string): Promise<string[]>;
  appendFile(path: string, text: string): Promise<void>;
  writeFile(path: string, content: string | Uint8Array): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  truncate(path: string, bytes: number): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Flushes a file's data to the device. */
  fsync(path: string): Promise<void>;
  /** Flushes a directory, so a rename in it survives a crash (a no-op where directories cannot be opened). */
  fsyncDir(dir: string): Promise<void>;
}

export const nodeFileSystem: FileSystem = {
  mkdir: async (dir) => void (await mkdir(dir, { recursive: true })),
  exists: (path) =>
    access(path).then(
      () => true,
      () => false,
    ),
  readFile: (path) => readFile(path, 'utf8'),
  readdir: (dir) => readdir(dir),
  appendFile: (path, text) => appendFile(path, text, 'utf8'),
  writeFile: (path, content) => writeFile(path, content),
  rename: (from, to) => rename(from, to),
  truncate: (path, bytes) => truncate(path, bytes),
  unlink: (path) => unlink(path),
  fsync: (path) => sync(path, 'r+'),
  // Directories cannot be opened for fsync on Windows; there the rename is as durable as NTFS makes it.
  fsyncDir: async (dir) => (process.platform === 'win32' ? undefined : sync(dir, 'r')),
};

/** Flushes a file or directory to the device (asynchronously: the event loop keeps serving meanwhile). */
async function sync(path: string, flags: string): Promise<void> {
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `path` through a temp file (`<path>.tmp`), fsync and rename, and fsyncs the directory so the rename is
 * durable: `path` is always either the old content or the new one. On failure the temp file is removed (best
 * effort) and the error is rethrown as it came.
 */
export async function writeAtomically(
  path: string,
  content: string | Uint8Array,
  fs: FileSystem = nodeFileSystem,
): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    await fs.writeFile(tmp, content);
    await fs.fsync(tmp);
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fs.fsyncDir(dirname(path));
}

/** `errno` codes of a failed file operation that a later try can cure. */
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);
const BUSY = new Set(['EAGAIN', 'EBUSY', 'EINTR', 'EMFILE', 'ENFILE']);

/**
 * Classifies what a file operation threw: a full disk or quota (`ENOSPC`, `EDQUOT`) is `TransientError`
 * `DISK_FULL`, running out of descriptors or a busy file is `TransientError` `FILE_BUSY` (both: the same write
 * may succeed once space or descriptors are back), anything else (`EACCES`, `EROFS`, `EIO`, …) is `FatalError`
 * `FILE_IO`. The original error is the `cause`; errors already classified pass through.
 */
export function fileError(err: unknown, op: string, path: string): StarstreamError {
  if (err instanceof StarstreamError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const reason = err instanceof Error ? err.message : String(err);
  if (code && DISK_FULL.has(code))
    return new TransientError('DISK_FULL', `${op} ${path}: no space left (${code})`, { cause: err });
  if (code && BUSY.has(code))
    return new TransientError('FILE_BUSY', `${op} ${path}: ${reason}`, { cause: err });
  return new FatalError('FILE_IO', `${op} ${path}: ${reason}`, { cause: err });
}
