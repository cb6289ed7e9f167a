import { join } from 'node:path';
import { z } from 'zod';
import type { LabelledTrajectory } from '../../domain/teacher.ts';
import { errorMessage, FatalError } from '../../errors/index.ts';
import { fileError, nodeFileSystem, writeAtomically, type FileSystem } from '../../util/files.ts';
import { judge, labelledIssue, REJECT_REASONS, type KeepFilter, type RejectReason } from './label.ts';

/**
 * The distillation data set on disk: rotating JSON-lines files of `LabelledTrajectory` records (one per line,
 * exactly the domain type) and a `manifest.json` that `train/` reads first.
 *
 * ```
 * <dir>/manifest.json
 * <dir>/kept-000001.jsonl       trajectories the filter keeps (the training data)
 * <dir>/rejected-000001.jsonl   the others, for analysis (failed runs, expired cases, teacher misses)
 * <dir>/kept-000002.jsonl.open  the part being written: never listed in the manifest
 * ```
 *
 * No file a reader can see is ever partial: records are appended (and fsynced per `write`) to a `.open`
 * part; when it reaches `maxRecordsPerFile`, or on `close()`, it is renamed to its final name and the
 * manifest, which lists only final parts, is rewritten through a temp file and a rename. After a crash, `open`
 * takes up the `.open` parts again (a torn last line, never acknowledged, is cut off).
 *
 * Records are written at least once: after a crash a record may appear twice; readers de-duplicate on
 * `case.caseId` (the Python reader does).
 *
 * A failed `write` or `close` (a full disk: `TransientError` `DISK_FULL`, other I/O errors `FatalError`
 * `FILE_IO`, the `node:fs` error as `cause`; see `fileError`) leaves everything readable as it was: the
 * lines of a failed append are cut off the open part again (or, if even that fails, before the next append),
 * a part whose rename failed stays open and is renamed by the next call, and a manifest that could not be
 * written is written by the next call (until then the old one stands, listing the parts before). The records
 * of a failed `write` may or may not be in the part: write them again (at least once, as after a crash).
 */

export const DATASET_SCHEMA_VERSION = 'labelled-trajectory-1';
export const MANIFEST_FILE = 'manifest.json';
export const SPLITS = ['kept', 'rejected'] as const;
export type Split = (typeof SPLITS)[number];

export interface DatasetFile {
  readonly path: string;
  readonly split: Split;
  readonly records: number;
  readonly fromMs: number;
  readonly toMs: number;
}

export interface Manifest {
  readonly schemaVersion: string;
  readonly updatedAtMs: number;
  readonly filter: KeepFilter;
  /** `backend/model` of the teacher runs, with their record counts. */
  readonly teacherModels: Readonly<Record<string, number>>;
  readonly counts: {
    readonly kept: number;
    readonly rejected: number;
    readonly rejectedBy: Readonly<Record<RejectReason, number>>;
    readonly outcomes: { readonly observed: number; readonly expired: number };
    readonly bySamplingReason: Readonly<Record<string, number>>;
  };
  /** Case times (event time) of the records in the listed files; null while there are none. */
  readonly timeRange: { readonly fromMs: number; readonly toMs: number } | null;
  readonly files: readonly DatasetFile[];
}

export interface DatasetWriterOptions {
  readonly dir: string;
  readonly maxRecordsPerFile: number;
  readonly filter: KeepFilter;
  readonly clock?: () => number;
  readonly onTornTail?: (file: string, bytes: number) => void;
  /** The file operations (tests inject a failing one); `node:fs` by default. */
  readonly fs?: FileSystem;
}

interface OpenPart {
  readonly index: number;
  records: number;
  /** Size of its accounted lines: a failed append is cut back to it. */
  bytes: number;
  /** A failed append could not be cut back yet: the next append does it first. */
  torn: boolean;
  fromMs: number;
  toMs: number;
  /** Stats of its records, merged into the manifest when it closes. */
  readonly stats: Stats;
}

interface Stats {
  teacherModels: Record<string, number>;
  rejectedBy: Record<RejectReason, number>;
  observed: number;
  expired: number;
  bySamplingReason: Record<string, number>;
}

export class DatasetWriter {
  private manifest: Manifest;
  private readonly parts = new Map<Split, OpenPart>();
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private closing: Promise<void> | null = null;
  /** The manifest on disk is behind `manifest` (its write failed): the next call writes it first. */
  private manifestBehind = false;
  private readonly fs: FileSystem;

  private constructor(
    private readonly options: DatasetWriterOptions,
    manifest: Manifest,
  ) {
    this.manifest = manifest;
    this.fs = options.fs ?? nodeFileSystem;
  }

  static async open(options: DatasetWriterOptions): Promise<DatasetWriter> {
    const fs = options.fs ?? nodeFileSystem;
    await fs.mkdir(options.dir);
    const manifestPath = join(options.dir, MANIFEST_FILE);
    let manifest: Manifest;
    if (await fs.exists(manifestPath)) {
      manifest = parseManifest(await fs.readFile(manifestPath), manifestPath);
      if (manifest.schemaVersion !== DATASET_SCHEMA_VERSION) {
        throw new FatalError('DATASET_VERSION', `${manifestPath} is ${manifest.schemaVersion}, this build writes ${DATASET_SCHEMA_VERSION}`);
      }
    } else {
      manifest = emptyManifest(options.filter, options.clock?.() ?? Date.now());
    }
    // The filter of a data set is fixed: changing it would mix records kept by different rules.
    if (manifest.filter.keep !== options.filter.keep || manifest.filter.k !== options.filter.k) {
      throw new FatalError('DATASET_FILTER', `${options.dir} was written with keep=${manifest.filter.keep} k=${manifest.filter.k}; export to a new directory to change it`);
    }
    const writer = new DatasetWriter(options, manifest);
    await writer.recoverOpenParts();
    return writer;
  }

  /** The manifest (closed parts only) as last written, or as the next call writes it after a failed write. */
  get current(): Manifest {
    return this.manifest;
  }

  /** Judges and appends records; resolves when they are on disk (fsynced). Calls run in order. */
  write(records: readonly LabelledTrajectory[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('dataset writer is closed'));
    const run = this.queue.then(() => this.writeNow(records));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Closes the open parts (renamed to final names) and writes the manifest. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    const run = this.queue.then(async () => {
      await this.catchUpManifest();
      for (const split of SPLITS) await this.closePart(split);
    });
    this.queue = run.catch(() => undefined);
    this.closing = run;
    // A close that failed (a full disk) may be called again: it closes what is still open.
    run.catch(() => {
      this.closing = null;
      this.closed = false;
    });
    return run;
  }

  private async writeNow(records: readonly LabelledTrajectory[]): Promise<void> {
    const bySplit = new Map<Split, { lines: string[]; recs: LabelledTrajectory[]; why: (RejectReason | null)[] }>();
    for (const record of records) {
      const verdict = judge(record, this.options.filter);
      const split: Split = verdict.kept ? 'kept' : 'rejected';
      let group = bySplit.get(split);
      if (!group) bySplit.set(split, (group = { lines: [], recs: [], why: [] }));
      group.lines.push(JSON.stringify(record));
      group.recs.push(record);
      group.why.push(verdict.kept ? null : verdict.why);
    }
    await this.catchUpManifest();
    for (const [split, group] of bySplit) {
      let offset = 0;
      while (offset < group.lines.length) {
        const part = await this.openPart(split);
        // Full already: its rotation failed last time (a full disk); rename it now.
        if (part.records >= this.options.maxRecordsPerFile) {
          await this.closePart(split);
          continue;
        }
        const room = this.options.maxRecordsPerFile - part.records;
        const end = Math.min(group.lines.length, offset + room);
        await this.append(split, part, group.lines.slice(offset, end).join('\n') + '\n');
        for (let i = offset; i < end; i++) account(part, group.recs[i]!, group.why[i]!);
        offset = end;
        if (part.records >= this.options.maxRecordsPerFile) await this.closePart(split);
      }
    }
  }

  private async openPart(split: Split): Promise<OpenPart> {
    let part = this.parts.get(split);
    if (!part) {
      const last = this.manifest.files.filter((f) => f.split === split).length;
      part = { index: last + 1, records: 0, bytes: 0, torn: false, fromMs: Infinity, toMs: -Infinity, stats: emptyStats() };
      this.parts.set(split, part);
    }
    return part;
  }

  /** Appends whole lines to the open part and fsyncs; on failure, cuts them off again and throws classified. */
  private async append(split: Split, part: OpenPart, text: string): Promise<void> {
    const path = this.openPath(split, part.index);
    try {
      if (part.torn) await this.cutBack(part, path);
      await this.fs.appendFile(path, text);
      await this.fs.fsync(path);
    } catch (err) {
      part.torn = true;
      await this.cutBack(part, path).catch(() => undefined);
      throw fileError(err, 'append to', path);
    }
    part.bytes += Buffer.byteLength(text, 'utf8');
  }

  private async cutBack(part: OpenPart, path: string): Promise<void> {
    try {
      await this.fs.truncate(path, part.bytes);
    } catch (err) {
      // Nothing to cut when the failed append never created the file.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    part.torn = false;
  }

  private async closePart(split: Split): Promise<void> {
    const part = this.parts.get(split);
    if (!part) return;
    const openPath = this.openPath(split, part.index);
    if (part.records === 0) {
      // Only a failed first append can have left an (empty) file behind.
      if (part.bytes === 0) await this.fs.unlink(openPath).catch(() => undefined);
      this.parts.delete(split);
      return;
    }
    const name = fileName(split, part.index);
    try {
      if (part.torn) await this.cutBack(part, openPath);
      await this.fs.rename(openPath, join(this.options.dir, name));
    } catch (err) {
      // The part stays open (and full, if it was rotating): the next write or close renames it.
      throw fileError(err, 'close', openPath);
    }
    this.parts.delete(split);
    const m = this.manifest;
    const s = part.stats;
    const range = m.timeRange
      ? { fromMs: Math.min(m.timeRange.fromMs, part.fromMs), toMs: Math.max(m.timeRange.toMs, part.toMs) }
      : { fromMs: part.fromMs, toMs: part.toMs };
    this.manifest = {
      ...m,
      updatedAtMs: this.options.clock?.() ?? Date.now(),
      teacherModels: addCounts(m.teacherModels, s.teacherModels),
      counts: {
        kept: m.counts.kept + (split === 'kept' ? part.records : 0),
        rejected: m.counts.rejected + (split === 'rejected' ? part.records : 0),
        rejectedBy: addCounts(m.counts.rejectedBy, s.rejectedBy) as Record<RejectReason, number>,
        outcomes: { observed: m.counts.outcomes.observed + s.observed, expired: m.counts.outcomes.expired + s.expired },
        bySamplingReason: addCounts(m.counts.bySamplingReason, s.bySamplingReason),
      },
      timeRange: range,
      files: [...m.files, { path: name, split, records: part.records, fromMs: part.fromMs, toMs: part.toMs }],
    };
    // From here the part is final and `manifest` lists it; if the write fails, the disk's manifest stays behind
    // (not listing the part) until the next call writes it, and a crash meanwhile takes the part up again.
    this.manifestBehind = true;
    await this.catchUpManifest();
  }

  /** Writes the manifest if the disk's copy is behind `manifest`. */
  private async catchUpManifest(): Promise<void> {
    if (!this.manifestBehind) return;
    const path = join(this.options.dir, MANIFEST_FILE);
    try {
      await writeAtomically(path, JSON.stringify(this.manifest, null, 2) + '\n', this.fs);
    } catch (err) {
      throw fileError(err, 'write', path);
    }
    this.manifestBehind = false;
  }

  /** Takes up `.open` parts left by a crash: their whole lines are kept, a torn last line is cut off. */
  private async recoverOpenParts(): Promise<void> {
    const names = await this.fs.readdir(this.options.dir);
    for (const split of SPLITS) {
      const listed = this.manifest.files.filter((f) => f.split === split).map((f) => f.path);
      const index = listed.length + 1;
      // Parts are numbered 1, 2, …: a manifest that lists other names, or parts on disk past the last listed
      // one, is not what this writer left (damaged or edited), and writing on would append to or rename over them.
      const odd = listed.findIndex((path, k) => path !== fileName(split, k + 1));
      if (odd >= 0) throw new FatalError('DATASET_CORRUPT', `${join(this.options.dir, MANIFEST_FILE)}: ${split} part ${odd + 1} is ${listed[odd]}, not ${fileName(split, odd + 1)}`);
      const beyond = names.find((n) => partNumber(n, split) > index);
      if (beyond !== undefined) throw new FatalError('DATASET_CORRUPT', `${join(this.options.dir, beyond)} is past the ${listed.length} ${split} parts ${MANIFEST_FILE} lists`);
      const name = `${fileName(split, index)}.open`;
      // A crash between a part's rename and the manifest's leaves the part final but unlisted: take it up again.
      if (names.includes(fileName(split, index)) && !names.includes(name)) {
        await this.fs.rename(join(this.options.dir, fileName(split, index)), join(this.options.dir, name));
      } else if (!names.includes(name)) {
        continue;
      }
      const path = join(this.options.dir, name);
      const text = await this.fs.readFile(path);
      const end = text.lastIndexOf('\n') + 1;
      // Where the good lines end, as an offset in the text: blank lines are skipped but counted. (Summing the
      // bytes of the non-blank lines put the cut inside the last record when a blank line came before it.)
      const lines = text.slice(0, end).split('\n');
      let last = lines.length - 1;
      while (last >= 0 && lines[last] === '') last--;
      const part: OpenPart = { index, records: 0, bytes: 0, torn: false, fromMs: Infinity, toMs: -Infinity, stats: emptyStats() };
      let goodChars = 0;
      let at = 0;
      for (const [i, line] of lines.entries()) {
        const next = at + line.length + 1;
        at = next;
        if (line === '') continue;
        let record: LabelledTrajectory;
        try {
          record = JSON.parse(line) as LabelledTrajectory;
        } catch (cause) {
          if (i < last) throw new FatalError('DATASET_CORRUPT', `${path}: line ${i + 1} is not JSON`, { cause });
          break;
        }
        const issue = labelledIssue(record);
        if (issue) throw new FatalError('DATASET_CORRUPT', `${path}: line ${i + 1}: ${issue}`);
        const verdict = judge(record, this.options.filter);
        account(part, record, verdict.kept ? null : verdict.why);
        goodChars = next;
      }
      const kept = text.slice(0, goodChars);
      const good = Buffer.byteLength(kept, 'utf8');
      const bytes = Buffer.byteLength(text, 'utf8');
      if (kept.includes('\uFFFD')) {
        // Bytes that are not UTF-8 read as U+FFFD, so offsets counted in the text are not the file's (a cut there
        // ran past the end and padded the part with NULs): write back what was read instead.
        if (good < bytes) this.options.onTornTail?.(path, bytes - good);
        await writeAtomically(path, kept, this.fs);
      } else if (good < bytes) {
        this.options.onTornTail?.(path, bytes - good);
        await this.fs.truncate(path, good);
      }
      part.bytes = good;
      this.parts.set(split, part);
    }
  }

  private openPath(split: Split, index: number): string {
    return join(this.options.dir, `${fileName(split, index)}.open`);
  }
}

function fileName(split: Split, index: number): string {
  return `${split}-${String(index).padStart(6, '0')}.jsonl`;
}

/** The number of a part file (final or open) of `split`, else 0. */
function partNumber(name: string, split: Split): number {
  const m = /^(kept|rejected)-(\d{6})\.jsonl(\.open)?$/.exec(name);
  return m && m[1] === split ? Number(m[2]) : 0;
}

function account(part: OpenPart, record: LabelledTrajectory, why: RejectReason | null): void {
  part.records++;
  part.fromMs = Math.min(part.fromMs, record.case.atMs);
  part.toMs = Math.max(part.toMs, record.case.atMs);
  const s = part.stats;
  const model = `${record.trajectory.backend}/${record.trajectory.model}`;
  s.teacherModels[model] = (s.teacherModels[model] ?? 0) + 1;
  if (why) s.rejectedBy[why]++;
  if (record.outcome.status === 'observed') s.observed++;
  else s.expired++;
  s.bySamplingReason[record.case.reason] = (s.bySamplingReason[record.case.reason] ?? 0) + 1;
}

function emptyStats(): Stats {
  return {
    teacherModels: {},
    rejectedBy: Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>,
    observed: 0,
    expired: 0,
    bySamplingReason: {},
  };
}

function emptyManifest(filter: KeepFilter, nowMs: number): Manifest {
  return {
    schemaVersion: DATASET_SCHEMA_VERSION,
    updatedAtMs: nowMs,
    filter,
    teacherModels: {},
    counts: {
      kept: 0,
      rejected: 0,
      rejectedBy: emptyStats().rejectedBy,
      outcomes: { observed: 0, expired: 0 },
      bySamplingReason: {},
    },
    timeRange: null,
    files: [],
  };
}

function addCounts(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

const count = z.number().int().nonnegative();
const counts = z.record(z.string(), count);
const manifestSchema = z.object({
  schemaVersion: z.literal(DATASET_SCHEMA_VERSION),
  updatedAtMs: z.number(),
  filter: z.object({ keep: z.enum(['top1', 'topk', 'all']), k: z.number().int().positive() }),
  teacherModels: counts,
  counts: z.object({
    kept: count,
    rejected: count,
    rejectedBy: z.object({ failed: count, expired: count, missed: count }),
    outcomes: z.object({ observed: count, expired: count }),
    bySamplingReason: counts,
  }),
  timeRange: z.object({ fromMs: z.number(), toMs: z.number() }).nullable(),
  files: z.array(
    z.object({
      // A file name inside the data set directory, never a path out of it.
      // eslint-disable-next-line no-control-regex
      path: z.string().regex(/^(?!\.\.?$)[^/\\\u0000]+$/, 'not a file name in the data set directory'),
      split: z.enum(SPLITS),
      records: count,
      fromMs: z.number(),
      toMs: z.number(),
    }),
  ),
});

/**
 * A manifest's text as a `Manifest`, or a `FatalError` naming the file and what is wrong: `codes.version`
 * for another schema version, `codes.invalid` for text that is not JSON or not a manifest (a damaged file,
 * a manifest that lists paths out of the directory or counts that are not counts). Readers check that the
 * listed files exist themselves.
 */
export function parseManifest(text: string, path: string, codes = { invalid: 'DATASET_INVALID', version: 'DATASET_VERSION' }): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new FatalError(codes.invalid, `${path} is not JSON: ${errorMessage(cause)}`, { cause });
  }
  const version = (value as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (typeof value === 'object' && value !== null && version !== DATASET_SCHEMA_VERSION && version !== undefined) {
    throw new FatalError(codes.version, `${path} is ${JSON.stringify(version).slice(0, 60)}, this build reads and writes ${DATASET_SCHEMA_VERSION}`);
  }
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FatalError(codes.invalid, `${path}: ${issue?.path.join('.').slice(0, 200) || '(root)'}: ${issue?.message ?? 'not a manifest'}`);
  }
  return parsed.data;
}
