import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode, errorMessage } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { createBaselineScorer } from '../star/baseline/scorer.ts';
import type { OnnxScorerOptions } from '../star/onnx/scorer.ts';
import type { Scorer } from '../star/port.ts';
import type { PromptSpec } from '../star/prompt/spec.ts';
import { StarModelError } from '../star/registry/errors.ts';
import type { ParityReport } from '../star/registry/parity.ts';
import { loadVerifiedModel } from '../star/registry/registry.ts';
import { advance, newSince, readCursor, writeCursor } from './cursor.ts';
import { evaluateScorer } from './evaluate.ts';
import { gate } from './gate.ts';
import { freeVersion, publishModel, readChampion } from './publish.ts';
import { challengerExperiment, writeChallengerExperiment } from './experiment.ts';
import { pruneRuns, saveReport, summaryLine, type DistillReport, type PublishTo } from './report.ts';
import { scanSources } from './sources.ts';
import { chooseWindow, writeTrainingInput } from './split.ts';
import { runPythonTrainer, type TrainerFn } from './trainer.ts';

/**
 * One turn of the distillation loop (`starstream distill`):
 *
 * 1. **collect**: snapshot the data set's final parts and the case file; unless forced, stop when the cursor
 *    has seen them all ("no new data");
 * 2. **split**: choose the held-out window (the latest evaluation cases, `split.ts`) and write the training
 *    input, everything before it, into `<stateDir>/runs/<runId>/input/`;
 * 3. **train** the challenger with the Python trainer's `distill` (stage 1, then GRPO) into `…/model/`;
 * 4. **evaluate** challenger and champion (the registry's `CURRENT` model, or the baseline ranker when the
 *    registry has none) on the window, through the serving path: `loadVerifiedModel` loads each STAR model
 *    and runs the registry's checks, parity included, so a challenger that would be refused in serving is
 *    refused here;
 * 5. **gate and publish** (`gate.ts`, `publish.ts`): only a win by more than the margin is copied into the
 *    registry (temp folder, verified again there, rename) and named in `CURRENT`; serving instances then
 *    hot-reload it;
 * 6. **record**: the report file, one summary line, a log line with the numbers, and the cursor.
 *
 * Every step's error is recorded as a `failed` report and then thrown: nothing is swallowed.
 */

export interface DistillOptions {
  readonly stateDir: string;
  readonly trajectoriesDir: string | null;
  readonly casesFile: string | null;
  readonly registryDir: string;
  readonly margin: number;
  readonly holdoutShare: number;
  readonly minHoldoutCases: number;
  readonly preset: string;
  readonly trainerSettings: Readonly<Record<string, string | number | boolean | null>>;
  readonly python?: string;
  readonly keepRuns: number;
  /**
   * `champion` (default): a winner becomes `CURRENT`. `experiment`: it goes into the registry as a challenger,
   * `CURRENT` stays, and the run writes the `experiment` section that puts it against the champion online.
   */
  readonly publishTo?: PublishTo;
  /** The challenger's share of the experiment's traffic (`publishTo=experiment`). @default 0.5 */
  readonly experimentShare?: number;
  /** Train even when the cursor has seen every part. */
  readonly force?: boolean;
  readonly spec: PromptSpec;
  readonly cstTemplateVersion: string;
  readonly parityTolerance: number;
  readonly scorer?: OnnxScorerOptions;
  readonly logger: Logger;
  /** Trainer output and progress lines. @default write to stderr */
  readonly progress?: (line: string) => void;
  /** @default Date.now */
  readonly clock?: () => number;
}

/** Seams for tests; the defaults are the real trainer, `loadVerifiedModel` and the baseline ranker. */
export interface DistillDeps {
  readonly train?: TrainerFn;
  readonly loadModel?: (dir: string) => Promise<{ scorer: Scorer; parity: ParityReport }>;
  readonly baseline?: () => Scorer;
}

type Draft = Omit<DistillReport, 'summary' | 'seconds' | 'decision' | 'reason' | 'code'>;

export async function runDistill(opts: DistillOptions, deps: DistillDeps = {}): Promise<DistillReport> {
  const clock = opts.clock ?? Date.now;
  const started = clock();
  const log = opts.logger.child({ component: 'distill' });
  const progress = opts.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const train = deps.train ?? runPythonTrainer;
  const loadModel =
    deps.loadModel ??
    ((dir: string) =>
      loadVerifiedModel(dir, { spec: opts.spec, cstTemplateVersion: opts.cstTemplateVersion, parityTolerance: opts.parityTolerance, scorer: opts.scorer ?? {} }));
  const baseline = deps.baseline ?? createBaselineScorer;

  await mkdir(opts.stateDir, { recursive: true });
  const runId = freeRunId(opts.stateDir, started);
  let draft: Draft = {
    reportVersion: 'distill-report-1',
    runId,
    startedAt: new Date(started).toISOString(),
    data: {
      trajectoriesDir: opts.trajectoriesDir,
      casesFile: opts.casesFile,
      parts: 0,
      newParts: [],
      casesChanged: false,
      forced: opts.force === true,
      training: null,
    },
    holdout: null,
    champion: null,
    challenger: null,
    gate: null,
    published: null,
  };
  const finish = async (decision: DistillReport['decision'], reason: string, code: string | null = null): Promise<DistillReport> => {
    const body = { ...draft, seconds: (clock() - started) / 1000, decision, reason, code };
    const report: DistillReport = { ...body, summary: summaryLine(body) };
    const path = await saveReport(opts.stateDir, report);
    const ch = report.champion?.metrics;
    const cl = report.challenger?.metrics;
    log[decision === 'failed' || decision === 'refused' ? 'error' : 'info'](
      {
        runId,
        decision,
        code,
        champion: report.champion?.version ?? null,
        championAvgHr: ch?.avgHr ?? null,
        challenger: report.challenger?.version ?? null,
        challengerAvgHr: cl?.avgHr ?? null,
        gain: report.gate?.gain ?? null,
        margin: opts.margin,
        holdoutCases: report.holdout?.cases ?? null,
        report: path,
      },
      report.summary,
    );
    return report;
  };

  try {
    // 1. collect
    const paths = { trajectoriesDir: opts.trajectoriesDir, casesFile: opts.casesFile };
    const state = await scanSources(paths);
    const cursor = await readCursor(opts.stateDir);
    const fresh = newSince(cursor, state);
    draft = { ...draft, data: { ...draft.data, parts: state.parts.length, newParts: fresh.parts.map((p) => p.path), casesChanged: fresh.casesChanged } };
    if (state.parts.length === 0 && !state.casesFile) {
      return await finish('skipped', `no data yet: ${opts.trajectoriesDir ?? '(no data set)'} lists no parts and no case file is configured`);
    }
    if (!fresh.any && !opts.force) {
      const last = cursor.lastRun ? ` (last run ${cursor.lastRun.runId}: ${cursor.lastRun.decision})` : '';
      return await finish('skipped', `no new data since the last run${last}: ${state.parts.length} parts already used, case file unchanged`);
    }

    // 2. split
    const window = await chooseWindow(paths, state, opts.holdoutShare);
    if (!window) return await finish('skipped', `no evaluation cases: the ${state.casesFile ? 'case file' : 'data set'} has no case with its observed item among the candidates`);
    const runDir = join(opts.stateDir, 'runs', runId);
    const input = await writeTrainingInput(paths, state, window, join(runDir, 'input'));
    const cases = input.evalCases;
    draft = {
      ...draft,
      data: { ...draft.data, training: input.counts },
      holdout: {
        source: window.source,
        share: opts.holdoutShare,
        poolCases: window.poolCases,
        cases: cases.length,
        cutoffMs: window.cutoffMs,
        fromMs: cases[0]?.atMs ?? null,
        toMs: cases[cases.length - 1]?.atMs ?? null,
      },
    };
    if (cases.length < opts.minHoldoutCases) {
      return await finish('skipped', `${cases.length} held-out cases, fewer than distill.minHoldoutCases = ${opts.minHoldoutCases}: wait for more data`);
    }
    if (!input.trajectoriesFile && !input.casesFile) {
      return await finish('skipped', `nothing to train on before the held-out window (cutoff ${new Date(window.cutoffMs).toISOString()})`);
    }

    // 3. train
    const version = freeVersion(opts.registryDir, runId);
    const modelDir = join(runDir, 'model');
    const trainStarted = clock();
    progress(`distill ${runId}: training challenger ${version} (${input.counts.trajectories.trained} trajectories, ${input.counts.cases.trained} cases; ${cases.length} held out)`);
    await train(
      {
        trajectories: input.trajectoriesFile,
        cases: input.casesFile,
        out: modelDir,
        version,
        report: join(runDir, 'train-report.json'),
        preset: opts.preset,
        set: opts.trainerSettings,
        ...(opts.python ? { python: opts.python } : {}),
      },
      (line) => progress(`trainer: ${line}`),
    );
    const trainSeconds = (clock() - trainStarted) / 1000;
    const challengerBase = { version, kind: 'star' as const, metrics: null, modelDir, parity: null, trainerMetrics: trainerMetrics(modelDir), trainSeconds };
    draft = { ...draft, challenger: challengerBase };

    // 4. evaluate (the challenger is loaded first: a refused one needs no champion)
    let challenger: { scorer: Scorer; parity: ParityReport };
    try {
      challenger = await loadModel(modelDir);
    } catch (err) {
      if (!(err instanceof StarModelError)) throw err;
      await writeCursor(opts.stateDir, advance(state, { runId, decision: 'refused', atMs: clock(), cutoffMs: window.cutoffMs }));
      return await finish('refused', `challenger ${version} failed the registry's checks; nothing published: ${err.message}`, err.code);
    }
    const scorers: Scorer[] = [challenger.scorer];
    let championRef: Awaited<ReturnType<typeof readChampion>> = null;
    try {
      draft = { ...draft, challenger: { ...challengerBase, version: challenger.scorer.modelVersion, parity: challenger.parity } };
      championRef = await readChampion(opts.registryDir);
      const champion = championRef ? (await loadModel(championRef.dir)).scorer : baseline();
      scorers.push(champion);
      progress(`distill ${runId}: scoring ${cases.length} held-out cases with ${challenger.scorer.modelVersion} and champion ${champion.modelVersion}`);
      const challengerMetrics = await evaluateScorer(challenger.scorer, cases);
      const championMetrics = await evaluateScorer(champion, cases);
      const decision = gate(championMetrics.avgHr, challengerMetrics.avgHr, opts.margin);
      draft = {
        ...draft,
        champion: { version: champion.modelVersion, kind: championRef ? 'star' : 'baseline', metrics: championMetrics },
        challenger: { ...draft.challenger!, metrics: challengerMetrics },
        gate: decision,
      };
    } finally {
      await Promise.all(scorers.map((s) => s.close()));
    }

    // 5. gate and publish
    const verdict = draft.gate!;
    if (!verdict.publish) {
      await writeCursor(opts.stateDir, advance(state, { runId, decision: 'rejected', atMs: clock(), cutoffMs: window.cutoffMs }));
      return await finish('rejected', `the challenger did not beat the champion by more than the margin; the champion keeps serving`);
    }
    const into = opts.publishTo ?? 'champion';
    const verify = async (dir: string): Promise<void> => {
      const check = await loadModel(dir);
      await check.scorer.close();
    };
    const published = await publishModel(opts.registryDir, modelDir, version, verify, into === 'champion');
    const experiment =
      into === 'experiment'
        ? await writeChallengerExperiment(opts.stateDir, published.version, challengerExperiment(published.version, championRef, opts.experimentShare ?? 0.5))
        : null;
    draft = { ...draft, published: { ...published, into, experiment } };
    await writeCursor(opts.stateDir, advance(state, { runId, decision: 'published', atMs: clock(), cutoffMs: window.cutoffMs }));
    if (experiment) {
      return await finish(
        'published',
        `the challenger won by more than the margin offline; ${published.version} is in the registry as an experiment's challenger (CURRENT unchanged): ` +
          `run the experiment with STARSTREAM_EXPERIMENT="$(cat ${experiment})" starstream run, or put ${experiment} under "experiment" in the config`,
      );
    }
    return await finish('published', `the challenger won by more than the margin; ${join(opts.registryDir, 'CURRENT')} names ${published.version}`);
  } catch (err) {
    try {
      await finish('failed', errorMessage(err), errorCode(err));
    } catch (reportErr) {
      // The run's own error is what the caller must see; the report's failure is logged beside it.
      log.error({ runId, code: errorCode(reportErr), err: errorMessage(reportErr) }, 'could not write the failed run\'s report');
    }
    throw err;
  } finally {
    // Run folders are bounded whatever the outcome; the newest (this run's) is always kept.
    await pruneRuns(opts.stateDir, opts.keepRuns);
  }
}

/** The trainer's own metrics (validation, stage 1 vs 2), from the challenger's `star.json`; null when unreadable. */
function trainerMetrics(modelDir: string): Readonly<Record<string, number>> | null {
  const path = join(modelDir, 'star.json');
  if (!existsSync(path)) return null;
  try {
    const manifest = JSON.parse(readFileSync(path, 'utf8')) as { metrics?: Record<string, number> };
    return manifest.metrics ?? null;
  } catch {
    // Information only: an unreadable star.json is refused with its reason by the registry's checks next.
    return null;
  }
}

/** `YYYY-MM-DD.HHMMSS` in UTC (the trainer's own version format), made unique among earlier runs. */
function freeRunId(stateDir: string, atMs: number): string {
  const base = new Date(atMs).toISOString().replace(/T(\d\d):(\d\d):(\d\d).*$/, '.$1$2$3');
  let id = base;
  for (let n = 2; existsSync(join(stateDir, 'runs', id)) || existsSync(join(stateDir, 'reports', `${id}.json`)); n++) id = `${base}-${n}`;
  return id;
}
