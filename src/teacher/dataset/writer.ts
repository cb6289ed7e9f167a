import { existsSync } from 'node:fs';
import { appendFile, mkdir, open, readFile, readdir, rename, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import type { LabelledTrajectory } from '../../domain/teacher.ts';
import { FatalError } from '../../errors/index.ts';
import { writeAtomically } from '../outcomes/journal.ts';
import { judge, REJECT_REASONS, type KeepFilter, type RejectReason } from './label.ts';

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
}

interface OpenPart {
  readonly index: number;
  records: number;
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

  private constructor(
    private readonly options: DatasetWriterOptions,
    manifest: Manifest,
  ) {
    this.manifest = manifest;
  }

  static async open(options: DatasetWriterOptions): Promise<DatasetWriter> {
    await mkdir(options.dir, { recursive: true });
    const manifestPath = join(options.dir, MANIFEST_FILE);
    let manifest: Manifest;
    if (existsSync(manifestPath)) {
      manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
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

  /** The manifest as last written (closed parts only). */
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
    if (this.closed) return this.queue;
    this.closed = true;
    const run = this.queue.then(async () => {
      for (const split of SPLITS) await this.closePart(split);
    });
    this.queue = run;
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
    for (const [split, group] of bySplit) {
      let offset = 0;
      while (offset < group.lines.length) {
        const part = await this.openPart(split);
        const room = this.options.maxRecordsPerFile - part.records;
        const end = Math.min(group.lines.length, offset + room);
        const path = this.openPath(split, part.index);
        await appendFile(path, group.lines.slice(offset, end).join('\n') + '\n', 'utf8');
        await fsync(path);
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
      part = { index: last + 1, records: 0, fromMs: Infinity, toMs: -Infinity, stats: emptyStats() };
      this.parts.set(split, part);
    }
    return part;
  }

  private async closePart(split: Split): Promise<void> {
    const part = this.parts.get(split);
    if (!part) return;
    this.parts.delete(split);
    if (part.records === 0) return;
    const name = fileName(split, part.index);
    await rename(this.openPath(split, part.index), join(this.options.dir, name));
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
    await writeAtomically(join(this.options.dir, MANIFEST_FILE), JSON.stringify(this.manifest, null, 2) + '\n');
  }

  /** Takes up `.open` parts left by a crash: their whole lines are kept, a torn last line is cut off. */
  private async recoverOpenParts(): Promise<void> {
    const names = await readdir(this.options.dir);
    for (const split of SPLITS) {
      const index = this.manifest.files.filter((f) => f.split === split).length + 1;
      const name = `${fileName(split, index)}.open`;
      // A crash between a part's rename and the manifest's leaves the part final but unlisted: take it up again.
      if (names.includes(fileName(split, index)) && !names.includes(name)) {
        await rename(join(this.options.dir, fileName(split, index)), join(this.options.dir, name));
      } else if (!names.includes(name)) {
        continue;
      }
      const path = join(this.options.dir, name);
      const text = await readFile(path, 'utf8');
      const end = text.lastIndexOf('\n') + 1;
      const lines = text.slice(0, end).split('\n').filter((l) => l.length > 0);
      const part: OpenPart = { index, records: 0, fromMs: Infinity, toMs: -Infinity, stats: emptyStats() };
      let good = 0;
      for (const [i, line] of lines.entries()) {
        let record: LabelledTrajectory;
        try {
          record = JSON.parse(line) as LabelledTrajectory;
        } catch (cause) {
          if (i < lines.length - 1) throw new FatalError('DATASET_CORRUPT', `${path}: line ${i + 1} is not JSON`, { cause });
          break;
        }
        const verdict = judge(record, this.options.filter);
        account(part, record, verdict.kept ? null : verdict.why);
        good += Buffer.byteLength(line, 'utf8') + 1;
      }
      const bytes = Buffer.byteLength(text, 'utf8');
      if (good < bytes) {
        this.options.onTornTail?.(path, bytes - good);
        await truncate(path, good);
      }
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

async function fsync(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
