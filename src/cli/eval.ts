import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Interaction, Item } from '../domain/events.ts';
import { DEFAULT_HARNESS_OPTIONS, runHarness, type HarnessOptions, type HarnessSystem } from '../eval/harness.ts';
import { PAPER_DEEPEST_HR } from '../eval/lists.ts';
import { replayConfig, replayEngine } from '../eval/replay.ts';
import { buildReport, reportSvg, reportTables, type EvalReport } from '../eval/report.ts';
import { cooccurrenceScorer, embeddingScorer, loadStarScorer, popularityScorer, onlineBlendScorer } from '../eval/systems.ts';
import { createMarsRanker } from '../eval/teacher.ts';
import type { Logger } from '../logging/logger.ts';
import { buildEngine, buildStore } from '../main.ts';
import { createBaselineScorer } from '../star/baseline/scorer.ts';
import type { LanguageModel } from '../teacher/llm/port.ts';
import { Progress } from './progress.ts';
import { loadDatasetArg } from './sources.ts';

/**
 * `starstream eval`: the evaluation harness (`src/eval/harness.ts`) on a data set. One replay in time order
 * measures the paper's protocol (20 candidates: HR@1/3/5, their average, NDCG@10) and the streaming one
 * (hit rate and NDCG@10 on the full candidate set) for popularity, item-CF, the collaborative embeddings,
 * the baseline ranker, every `--star name=dir` model and, with `--teacher-budget-s`, the MARS teacher on a
 * sample sized to that budget; every metric per scenario slice (`src/eval/slices.ts`) with its case count.
 * Prints the tables (progress lines go to stderr) and writes `eval-<dataset>.json`, `.md` and `.svg` under
 * `out`.
 */

export interface EvalCommandOptions {
  /** `ml-100k`, `lastfm` or a data-set directory. */
  readonly dataset: string;
  /** Output directory. */
  readonly out: string;
  /** STAR model directories, each a row named `STAR <name>`. */
  readonly star?: readonly { readonly name: string; readonly dir: string }[];
  /** Wall-time budget of teacher runs, seconds; 0 = no teacher. @default 0 */
  readonly teacherBudgetS?: number;
  /** Seed of the paper protocol's negatives and of the teacher's sample. @default 1 */
  readonly seed?: number;
  /** Streaming protocol: score every n-th event after the warm-up. @default 1 */
  readonly streamEvery?: number;
  /** Only the first n events of the data set (a quick look; the split follows the shorter span). */
  readonly limitEvents?: number;
}

export async function evalCommand(config: Config, logger: Logger, options: EvalCommandOptions): Promise<number> {
  const dataset = await loadDatasetArg(options.dataset, 'eval --dataset');
  const events = options.limitEvents ? dataset.interactions.slice(0, options.limitEvents) : dataset.interactions;
  const report = await runEval(config, logger, { name: dataset.name, events, items: dataset.items }, options);
  process.stdout.write(`\n${reportTables(report)}`);
  const files = await writeReport(report, options.out);
  logger.info({ files }, 'evaluation written');
  return 0;
}

export interface EvalDataset {
  readonly name: string;
  readonly events: readonly Interaction[];
  readonly items: readonly Item[];
}

/** Builds the systems, runs the harness over a fresh embedded store, and returns the report. */
export async function runEval(
  config: Config,
  logger: Logger,
  dataset: EvalDataset,
  options: Omit<EvalCommandOptions, 'dataset' | 'out'> & { readonly progress?: (line: string) => void; readonly model?: LanguageModel },
): Promise<EvalReport> {
  const systems: HarnessSystem[] = [
    { name: 'popularity', scorer: popularityScorer() },
    { name: 'item-cf', scorer: cooccurrenceScorer() },
    { name: 'embeddings', scorer: embeddingScorer() },
    { name: 'baseline', scorer: createBaselineScorer() },
    // The baseline's blend learning online from each case's next one (`src/star/online/`), fresh per run, one
    // per protocol: each learns from the lists it is shown, and its guard judges hits at the cut-off its
    // protocol reports (top 10 of the stream's candidates; top 5 of the paper's 20, where top 10 is half the list).
    { name: 'online', scorer: onlineBlendScorer({ k: DEFAULT_HARNESS_OPTIONS.streaming.k }), paperScorer: onlineBlendScorer({ k: PAPER_DEEPEST_HR }) },
  ];
  for (const { name, dir } of options.star ?? []) {
    systems.push({ name: `STAR ${name}`, scorer: await loadStarScorer(dir), source: dir });
  }
  const store = buildStore(replayConfig(config));
  await store.init();
  // The catalogue arrives on the items topic in the stream; here it is loaded up front (titles, categories).
  await store.putItemMetadata(dataset.items.map((i) => ({ itemId: i.itemId, title: i.title, categories: i.categories })));
  const engine = buildEngine(config, store);
  const budgetS = options.teacherBudgetS ?? 0;
  let model: LanguageModel | null = null;
  try {
    if (budgetS > 0) {
      if (options.model) model = options.model;
      else {
        const { createLanguageModel } = await import('../teacher/llm/create.ts');
        model = await createLanguageModel(config.teacher.llm, logger);
      }
    }
    const harnessOptions: HarnessOptions = {
      ...DEFAULT_HARNESS_OPTIONS,
      streaming: { ...DEFAULT_HARNESS_OPTIONS.streaming, every: Math.max(1, Math.floor(options.streamEvery ?? 1)) },
      paper: { ...DEFAULT_HARNESS_OPTIONS.paper, seed: options.seed ?? 1 },
      // The sampler's own cold-user rule (at most N interactions with the triggering one) is "fewer than N before".
      slices: { ...DEFAULT_HARNESS_OPTIONS.slices, coldUserMinInteractions: config.sampling.coldUserMaxInteractions },
      teacher: model
        ? {
            ranker: createMarsRanker({
              model,
              store,
              limits: config.teacher.limits,
              templates: engine.templates,
              evidence: engine.caseOptions.evidence,
              servingModel: systems[3]!.scorer.modelVersion,
            }),
            budgetMs: budgetS * 1000,
            servingScorer: systems[3]!.scorer,
          }
        : null,
    };
    const progress = new Progress('eval: events', dataset.events.length, 2_000, options.progress);
    let lastStatus = '';
    const result = await runHarness(
      dataset.events,
      dataset.items,
      replayEngine(config, engine),
      systems,
      {
        ...harnessOptions,
        onProgress: (done, _total, status) => {
          lastStatus = status;
          progress.update(done, status);
        },
      },
    );
    progress.finish(dataset.events.length, lastStatus);
    return buildReport(result, { dataset: { name: dataset.name, items: dataset.items.length }, engineSeed: config.embeddings.seed, options: harnessOptions, systems });
  } finally {
    await Promise.all(systems.flatMap((s) => [s.scorer, s.paperScorer]).map((scorer) => scorer?.close()));
    if (model && !options.model) await model.close();
    await store.close();
  }
}

/** Writes `eval-<dataset>.json`, `.md` and `.svg` under `out`; returns their paths. */
export async function writeReport(report: EvalReport, out: string): Promise<string[]> {
  await mkdir(out, { recursive: true });
  const base = join(out, `eval-${report.dataset.name.replace(/[^\w.-]+/g, '_')}`);
  await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(`${base}.md`, `# starstream eval\n\n${reportTables(report, true)}`);
  await writeFile(`${base}.svg`, reportSvg(report));
  return [`${base}.json`, `${base}.md`, `${base}.svg`];
}
