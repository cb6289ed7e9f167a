import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { LoadedDataset } from '../data/files.ts';
import { createRng, type Rng } from '../data/random.ts';
import type { LabelledTrajectory } from '../domain/teacher.ts';
import { createMarsRanker, sampledTeacherRun, TeacherSampler, type TeacherRanker } from '../eval/teacher.ts';
import { createBaselineScorer } from '../star/baseline/scorer.ts';
import type { LanguageModel } from '../teacher/llm/port.ts';
import type { Scorer } from '../star/port.ts';
import { labelTrajectory } from '../teacher/dataset/label.ts';
import { DatasetWriter } from '../teacher/dataset/writer.ts';
import { Progress } from './progress.ts';
import { loadDatasetArg } from './sources.ts';
import type { Logger } from '../logging/logger.ts';
import type { ScoringCase } from '../domain/evidence.ts';
import { BadInputError } from '../errors/index.ts';
import { buildPaperCase, learnEvent, replayConfig, replayEngine, ReplayState } from '../eval/replay.ts';
import { buildEngine, buildStore, type Engine } from '../main.ts';
import { StoreView } from '../stages/state/store-view.ts';

/**
 * `starstream cases export`: replays a data set through the engine in time order, exactly like the streaming
 * evaluation (`src/eval/streaming.ts`: for each event, first use the state learned from every earlier event,
 * then learn the event), and writes labelled cases for STAR's trainer, one JSON object per line:
 *
 * ```
 * {"split":"train"|"test","label":<index of the true item in case.candidates>,"itemId":"<true item>",
 *  "case":{"eventId","atMs","user":UserContext,"candidates":[CollaborativeEvidence…]}}
 * ```
 *
 * A case is the paper's protocol: the event's item plus `candidates − 1` negatives the user has not
 * interacted with, drawn uniformly (or popularity-weighted) from the items the stream has seen so far, in
 * a seeded random order; CST evidence (features and sentences) for every candidate is computed at that
 * moment from the state before the event (`evidenceForItems`). Events in the first `trainShare` of the data
 * set's time span are `train`, the rest `test`; every `trainEvery`-th train event and every `testEvery`-th
 * test event becomes a case (the reference protocol takes every 4th test event). The trainer reads exactly
 * these files, so serving and training features cannot drift apart. A sidecar `<out>.meta.json` records the
 * options and counts.
 *
 * The catalogue (titles, categories) is loaded into the store up front, as the streaming evaluation does
 * (`src/cli/eval.ts`): in the stream it arrives on the items topic. An item the stream has not seen yet
 * still has no vector, counts or neighbours ("New to the catalogue").
 */

export const CASE_FILE_VERSION = 'cases-1';

export interface CasesExportOptions {
  /** `ml-100k`, `lastfm`, a directory in one of their formats, or a loaded data set. */
  readonly dataset: string | LoadedDataset;
  /** Output `.jsonl` file. */
  readonly out: string;
  /** Candidates per case, the true item included. @default 20 */
  readonly candidates?: number;
  /** How negatives are drawn from the seen items the user has not interacted with. @default 'uniform' */
  readonly negativeSampler?: 'uniform' | 'popularity';
  /** Share of the time span (not of the events) that is `train`. @default 0.8 */
  readonly trainShare?: number;
  /** Every n-th train event becomes a case. @default 4 */
  readonly trainEvery?: number;
  /** Every n-th test event becomes a case. @default 4 */
  readonly testEvery?: number;
  /** Train events in the first share of all events only build state (the stream knows too little yet). @default 0.05 */
  readonly warmupShare?: number;
  /** Seed of the negatives and the candidate order. @default 1 */
  readonly seed?: number;
  /** Stop after this many cases (both splits together). */
  readonly limit?: number;
  /** Which splits to write. @default ['train', 'test'] */
  readonly splits?: readonly ('train' | 'test')[];
  /** Progress lines (rate, ETA) go here; null = silent. @default process.stderr */
  readonly progress?: NodeJS.WritableStream | null;
  /** @default 2000 */
  readonly progressEveryMs?: number;
  /** The MARS teacher on a sample of the train cases (see `CasesTeacher`); null = none. */
  readonly teacher?: CasesTeacher | null;
}

/**
 * Distillation data from the same replay: the teacher ranks a sample of the `train` cases, spread over the
 * train window and sized to a wall-time budget (the evaluation harness's `TeacherSampler`), inside the
 * replay so its tools read the state as of the case. The case's candidates go to it in the serving
 * scorer's order, as the pipeline sends them; the case's true item is its observed outcome. Each run is
 * handed to `write` as a labelled trajectory (failed runs too: the data set files them as rejected), which
 * `train --trajectories` reads. A run cut by the budget is dropped. Test cases never reach the teacher.
 */
export interface CasesTeacher {
  readonly model: LanguageModel;
  readonly budgetMs: number;
  readonly write: (record: LabelledTrajectory) => Promise<void>;
}

export interface CasesExportReport {
  readonly version: string;
  readonly dataset: string;
  readonly out: string;
  readonly events: number;
  readonly splitAtMs: number;
  readonly cases: { readonly train: number; readonly test: number };
  /** Selected events not written: the user had the item already, or too few items to sample from. */
  readonly skipped: { readonly repeat: number; readonly fewItems: number };
  /** Teacher runs on train cases: written (completed + failed), of them completed, and cut by the budget. */
  readonly teacher: { readonly version: string; readonly runs: number; readonly completed: number; readonly cutByBudget: number; readonly seconds: number } | null;
  readonly seconds: number;
  readonly options: Record<string, unknown>;
}

export interface CaseRecord {
  readonly split: 'train' | 'test';
  readonly label: number;
  readonly itemId: string;
  readonly case: ScoringCase;
}

/**
 * The command: `cases export [--teacher-budget-s S --trajectories DIR]`. With a teacher budget, the teacher
 * (`teacher.llm`, `teacher.limits`) ranks a sample of the train cases and the runs go to a labelled data set
 * in DIR (the teacher's own dataset writer, `sampling.dataset.keep` deciding kept/rejected).
 */
export async function casesExportCommand(
  config: Readonly<Config>,
  logger: Logger,
  opts: Pick<CasesExportOptions, 'dataset' | 'out' | 'seed'> & { readonly teacherBudgetS?: number; readonly trajectories?: string },
): Promise<CasesExportReport> {
  const budgetS = opts.teacherBudgetS ?? 0;
  if (budgetS > 0 !== (opts.trajectories !== undefined)) {
    throw new BadInputError('CASES_OPTIONS', 'cases export: --teacher-budget-s and --trajectories go together');
  }
  if (budgetS <= 0) return casesExport(config, opts);
  const { createLanguageModel } = await import('../teacher/llm/create.ts');
  const model = await createLanguageModel(config.teacher.llm, logger);
  const d = config.sampling.dataset;
  const writer = await DatasetWriter.open({ dir: opts.trajectories!, maxRecordsPerFile: d.maxRecordsPerFile, filter: { keep: d.keep, k: d.keepTopK } });
  try {
    return await casesExport(config, { ...opts, teacher: { model, budgetMs: budgetS * 1000, write: (r) => writer.write([r]) } });
  } finally {
    await writer.close();
    await model.close();
  }
}

export async function casesExport(config: Readonly<Config>, opts: CasesExportOptions): Promise<CasesExportReport> {
  const started = performance.now();
  const o = {
    candidates: opts.candidates ?? 20,
    negativeSampler: opts.negativeSampler ?? 'uniform',
    trainShare: opts.trainShare ?? 0.8,
    trainEvery: opts.trainEvery ?? 4,
    testEvery: opts.testEvery ?? 4,
    warmupShare: opts.warmupShare ?? 0.05,
    seed: opts.seed ?? 1,
    limit: opts.limit ?? Number.POSITIVE_INFINITY,
    splits: new Set(opts.splits ?? ['train', 'test']),
  };
  if (!Number.isInteger(o.candidates) || o.candidates < 2) throw new BadInputError('CASES_OPTIONS', `candidates must be an integer ≥ 2, got ${o.candidates}`);
  if (!(o.trainShare > 0 && o.trainShare < 1)) throw new BadInputError('CASES_OPTIONS', `trainShare must be in (0, 1), got ${o.trainShare}`);
  for (const [name, n] of [['trainEvery', o.trainEvery], ['testEvery', o.testEvery]] as const) {
    if (!Number.isInteger(n) || n < 1) throw new BadInputError('CASES_OPTIONS', `${name} must be a positive integer, got ${n}`);
  }
  const data = typeof opts.dataset === 'string' ? await loadDatasetArg(opts.dataset, 'cases export --dataset') : opts.dataset;
  const datasetName = typeof opts.dataset === 'string' ? opts.dataset : 'in-memory';
  const events = data.interactions;
  const first = events[0]?.timestampMs ?? 0;
  const last = events[events.length - 1]?.timestampMs ?? 0;
  const splitAtMs = first + o.trainShare * (last - first);
  const warmupEnd = Math.floor(events.length * o.warmupShare);

  const engine = buildEngine(config, buildStore(replayConfig(config)));
  await engine.store.init();
  await engine.store.putItemMetadata(data.items.map((i) => ({ itemId: i.itemId, title: i.title, categories: i.categories })));
  const replay = replayEngine(config, engine);
  const state = new ReplayState(createRng(o.seed).fork('cases'));
  const counts = { train: 0, test: 0 };
  const skipped = { repeat: 0, fewItems: 0 };
  await mkdir(dirname(opts.out), { recursive: true });
  const out = createWriteStream(opts.out, { encoding: 'utf8' });
  const sink = opts.progress === undefined ? process.stderr : opts.progress;
  const progress = new Progress('cases export: events', events.length, opts.progressEveryMs ?? 2_000, (line) => void sink?.write(`${line}\n`));
  const status = (): string => [`${(counts.train + counts.test).toLocaleString('en-US')} cases`, teacher?.status()].filter(Boolean).join('; ');
  // Every event is committed, which also empties the view's cache (as in the streaming evaluation).
  const view = new StoreView(engine.store, engine.mergeItem);
  let trainIndex = 0;
  let testIndex = 0;
  const teacher = opts.teacher
    ? new TrainCaseTeacher(
        trainCaseRanker(config, engine, opts.teacher.model),
        opts.teacher,
        createRng(o.seed).fork('teacher'),
        selectedTrainEvents(events, splitAtMs, warmupEnd, o.trainEvery),
      )
    : null;
  try {
    for (let t = 0; t < events.length && counts.train + counts.test < o.limit; t++) {
      const event = events[t]!;
      const split = event.timestampMs < splitAtMs ? 'train' : 'test';
      const selected =
        split === 'train' ? t >= warmupEnd && trainIndex++ % o.trainEvery === 0 : testIndex++ % o.testEvery === 0;
      if (selected && o.splits.has(split)) {
        const built = await buildPaperCase(view, event, replay, state, o.candidates, o.negativeSampler);
        if (built === 'repeat') skipped.repeat++;
        else if (built === 'fewItems') skipped.fewItems++;
        else {
          counts[split]++;
          const record: CaseRecord = { split, ...built };
          await writeLine(out, JSON.stringify(record));
          if (split === 'train') await teacher?.offer(record, event.timestampMs);
        }
      }
      if (split === 'train' && selected) teacher?.passed();
      await learnEvent(view, event, replay);
      state.observe(event);
      if (sink) progress.update(t + 1, status());
    }
  } finally {
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await engine.store.close();
  }
  if (sink) progress.finish(events.length, `${status()}; done`);
  const report: CasesExportReport = {
    version: CASE_FILE_VERSION,
    dataset: datasetName,
    out: opts.out,
    events: events.length,
    splitAtMs,
    cases: counts,
    skipped,
    teacher: teacher?.report() ?? null,
    seconds: (performance.now() - started) / 1000,
    options: { ...o, limit: opts.limit ?? null, splits: [...o.splits], cstTemplateVersion: engine.templates.version },
  };
  await writeFile(`${opts.out}.meta.json`, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

/** How many train events the export selects (the teacher sampler spreads its budget over them). */
function selectedTrainEvents(events: readonly { timestampMs: number }[], splitAtMs: number, warmupEnd: number, every: number): number {
  let n = 0;
  for (let t = warmupEnd; t < events.length && events[t]!.timestampMs < splitAtMs; t++) n++;
  return Math.ceil(n / every);
}

/** The teacher as the eval harness runs it, with the baseline ranker's order as the serving order. */
function trainCaseRanker(config: Readonly<Config>, engine: Engine, model: LanguageModel): { ranker: TeacherRanker; servingScorer: Scorer } {
  const servingScorer = createBaselineScorer();
  const ranker = createMarsRanker({
    model,
    store: engine.store,
    limits: config.teacher.limits,
    templates: engine.templates,
    evidence: engine.caseOptions.evidence,
    servingModel: servingScorer.modelVersion,
  });
  return { ranker, servingScorer };
}

class TrainCaseTeacher {
  private readonly sampler: TeacherSampler;
  private toCome: number;
  private runs = 0;
  private completed = 0;
  private cut = 0;

  constructor(
    private readonly teacher: { readonly ranker: TeacherRanker; readonly servingScorer: Scorer },
    private readonly options: CasesTeacher,
    rng: Rng,
    selected: number,
  ) {
    this.sampler = new TeacherSampler(options.budgetMs, rng);
    this.toCome = selected;
  }

  /** Maybe runs the teacher on this train case (before the event is learned) and writes the labelled run. */
  async offer(record: CaseRecord, observedAtMs: number): Promise<void> {
    const sampled = await sampledTeacherRun(this.sampler, this.teacher, record.case, this.toCome);
    if (!sampled) return;
    if (sampled.answer.cutByBudget) {
      this.cut++;
      return;
    }
    if (!sampled.answer.run) throw new Error(`the teacher ranker ${this.teacher.ranker.version} keeps no trajectories`);
    const { teacherCase, trajectory } = sampled.answer.run;
    const listed = teacherCase.candidates.findIndex((c) => c.itemId === record.itemId);
    const outcome = { status: 'observed', nextItemId: record.itemId, observedAtMs, studentRank: listed < 0 ? null : listed + 1 } as const;
    await this.options.write(labelTrajectory(trajectory, { case: teacherCase, outcome }));
    this.runs++;
    if (trajectory.status === 'completed') this.completed++;
  }

  /** One selected train event has gone by (taken or not). */
  passed(): void {
    this.toCome = Math.max(0, this.toCome - 1);
  }

  status(): string {
    return `teacher ${this.runs} runs (${this.completed} completed), ${Math.max(0, this.sampler.remainingMs / 1000).toFixed(0)}s of budget left`;
  }

  report(): NonNullable<CasesExportReport['teacher']> {
    return { version: this.teacher.ranker.version, runs: this.runs, completed: this.completed, cutByBudget: this.cut, seconds: Math.round(this.sampler.spentMs / 1000) };
  }
}

function writeLine(out: WriteStream, line: string): Promise<void> | void {
  if (out.write(`${line}\n`)) return;
  return new Promise((resolve) => out.once('drain', resolve));
}

