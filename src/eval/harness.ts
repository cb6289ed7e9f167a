import type { Interaction, Item } from '../domain/events.ts';
import { createRng } from '../data/random.ts';
import type { CstTemplates } from '../cst/index.ts';
import { StoreView } from '../stages/state/store-view.ts';
import type { Scorer } from '../star/port.ts';
import { rankCases, type LabelledCase } from './lists.ts';
import { buildPaperCase, learnEvent, ReplayState, type NegativeSampling, type ReplayEngine } from './replay.ts';
import { DEFAULT_SLICE_RULES, HistoryTracker, type CaseTags, type SliceRules } from './slices.ts';
import { streamingCase } from './streaming.ts';
import { sampledTeacherRun, TeacherSampler, type SampledRun, type TeacherRanker } from './teacher.ts';

/**
 * The evaluation harness: one replay of a data set in time order that measures both protocols for every
 * system on identical cases. For each event, with the state learned from every earlier event:
 *
 * 1. streaming protocol (events after the first `streaming.warmupShare` of events, every `streaming.every`-th):
 *    the stream's own candidate set for the user (the full catalogue as far as the sources reach, consumed
 *    items excluded); a hit is the event's item in a system's top `streaming.k`;
 * 2. paper protocol (events in the last `paper.testShare` of the time span, every `paper.every`-th): the
 *    event's item plus `paper.candidates − 1` negatives sampled from the items seen so far that the user has
 *    not had (`ReplayState`, seeded by `paper.seed`), with CST evidence (`buildPaperCase`, exactly what
 *    `starstream cases export` writes); HR@1/3/5 and NDCG@10;
 * 3. the teacher, on a sample of the paper cases within its budget (`teacher.ts`), before the event is learned;
 * 4. then the event is learned, as the stream learns it.
 *
 * Every case is frozen when built (its evidence is computed then), so scoring is deferred to batches of
 * `batchLists` and every system scores the very same frozen case objects. Each case is tagged with its
 * scenario slices (`slices.ts`). The result holds, per protocol, the tags and one rank per system per case;
 * `report.ts` turns them into metrics per slice.
 */

export interface HarnessSystem {
  /** Row name in the report, e.g. `popularity`, `STAR stage-2`. */
  readonly name: string;
  readonly scorer: Scorer;
  /**
   * The paper protocol's scorer, when it must not be `scorer`: a system that learns from the lists it scores
   * (the online blend) gets one per protocol, because the paper protocol's lists (the true item and uniform
   * negatives) and the stream's candidate sets are different worlds, and what one teaches misleads the other.
   */
  readonly paperScorer?: Scorer;
  /** Where it came from (a model directory), recorded in the report. */
  readonly source?: string;
}

export interface HarnessOptions {
  readonly streaming: {
    /** Cut-off of hit rate and NDCG. @default 10 */
    readonly k: number;
    /** Share of events (by count) that only train. @default 0.2 */
    readonly warmupShare: number;
    /** Score every n-th event after the warm-up. @default 1 */
    readonly every: number;
  };
  readonly paper: {
    /** Share of the time span (the latest) whose events are test cases. @default 0.2 */
    readonly testShare: number;
    /** Every n-th test event becomes a case. @default 4 */
    readonly every: number;
    /** Candidates per case, the true item included. @default 20 */
    readonly candidates: number;
    readonly negativeSampler: NegativeSampling;
    /** Seed of the negatives, the candidate order and the teacher's sample. @default 1 */
    readonly seed: number;
  };
  readonly slices: SliceRules;
  /** Lists per `score()` call. @default 32 */
  readonly batchLists: number;
  /** The MARS teacher and its wall-time budget; null = skipped. */
  readonly teacher: { readonly ranker: TeacherRanker; readonly budgetMs: number; readonly servingScorer: Scorer } | null;
  /** Called now and then with events done, their total and a short status. */
  readonly onProgress?: (done: number, total: number, status: string) => void;
}

export const DEFAULT_HARNESS_OPTIONS: HarnessOptions = {
  streaming: { k: 10, warmupShare: 0.2, every: 1 },
  paper: { testShare: 0.2, every: 4, candidates: 20, negativeSampler: 'uniform', seed: 1 },
  slices: DEFAULT_SLICE_RULES,
  batchLists: 32,
  teacher: null,
};

/** One protocol's cases: tags per case, and per system (in `systems` order) the true item's rank per case. */
export interface ProtocolCases {
  readonly tags: CaseTags[];
  readonly ranks: number[][];
}

/** One teacher run, by the index of its paper case. */
export interface TeacherRun {
  readonly caseIndex: number;
  readonly eventId: string;
  /** Rank of the true item in the teacher's order (the serving order for a failed run), 0-based. */
  readonly rank: number;
  readonly completed: boolean;
  readonly failure: string | null;
  readonly ms: number;
}

export interface HarnessResult {
  readonly events: number;
  /** Start of the paper protocol's test window (event time). */
  readonly splitAtMs: number;
  readonly streaming: ProtocolCases;
  readonly paper: ProtocolCases & {
    /** Selected test events not made into cases: the user had the item already, or too few items seen. */
    readonly skipped: { readonly repeat: number; readonly fewItems: number };
  };
  readonly teacher: {
    readonly version: string;
    readonly budgetMs: number;
    readonly runs: TeacherRun[];
    /** Runs the budget cut short, left out of the sample. */
    readonly cutByBudget: number;
  } | null;
  readonly seconds: number;
}

export type HarnessEngine = ReplayEngine & { readonly templates: CstTemplates };

export async function runHarness(
  events: readonly Interaction[],
  items: readonly Pick<Item, 'itemId' | 'categories'>[],
  engine: HarnessEngine,
  systems: readonly HarnessSystem[],
  options: HarnessOptions = DEFAULT_HARNESS_OPTIONS,
): Promise<HarnessResult> {
  const started = performance.now();
  const { streaming: so, paper: po } = options;
  const first = events[0]?.timestampMs ?? 0;
  const last = events[events.length - 1]?.timestampMs ?? 0;
  const splitAtMs = first + (1 - po.testShare) * (last - first);
  const streamingFrom = Math.floor(events.length * so.warmupShare);
  const testEvents = events.filter((e) => e.timestampMs >= splitAtMs).length;
  const paperCasesTotal = Math.ceil(testEvents / po.every);

  const tracker = new HistoryTracker(items, options.slices);
  const rng = createRng(po.seed);
  const state = new ReplayState(rng.fork('cases'));
  const view = new StoreView(engine.store, engine.mergeItem);
  const sentences = systems.some((s) => s.scorer.readsSentences) ? engine.templates : null;
  const streamingBatch = new Batch(systems.map((s) => s.scorer), so.k, options.batchLists);
  const paperBatch = new Batch(systems.map((s) => s.paperScorer ?? s.scorer), po.candidates, options.batchLists);
  const skipped = { repeat: 0, fewItems: 0 };
  const teacher = options.teacher;
  const sampler = teacher ? new TeacherSampler(teacher.budgetMs, rng.fork('teacher')) : null;
  const teacherRuns: TeacherRun[] = [];
  let cutByBudget = 0;
  let testIndex = 0;

  const status = (): string => {
    const parts = [`streaming ${streamingBatch.tags.length} cases`, `paper ${paperBatch.tags.length} cases`];
    if (sampler) parts.push(`teacher ${teacherRuns.length} runs (${Math.max(0, sampler.remainingMs / 1000).toFixed(0)}s left)`);
    return parts.join(', ');
  };

  for (let t = 0; t < events.length; t++) {
    const event = events[t]!;
    const tags = tracker.tag(event);
    if (t >= streamingFrom && (t - streamingFrom) % so.every === 0) {
      await streamingBatch.add({ itemId: event.itemId, case: await streamingCase(view, event, engine, sentences) }, tags);
    }
    if (event.timestampMs >= splitAtMs && testIndex++ % po.every === 0) {
      const built = await buildPaperCase(view, event, engine, state, po.candidates, po.negativeSampler);
      if (built === 'repeat') skipped.repeat++;
      else if (built === 'fewItems') skipped.fewItems++;
      else {
        const caseIndex = paperBatch.tags.length;
        const casesToCome = Math.max(1, paperCasesTotal - caseIndex);
        const sampled = teacher ? await sampledTeacherRun(sampler!, teacher, built.case, casesToCome) : null;
        if (sampled) {
          if (sampled.answer.cutByBudget) cutByBudget++;
          else teacherRuns.push(teacherRun(sampled, built, caseIndex));
          options.onProgress?.(t + 1, events.length, status());
        }
        await paperBatch.add(built, tags);
      }
    }
    await learnEvent(view, event, engine);
    tracker.observe(event);
    state.observe(event);
    if ((t + 1) % 500 === 0) options.onProgress?.(t + 1, events.length, status());
  }
  await streamingBatch.flush();
  await paperBatch.flush();
  return {
    events: events.length,
    splitAtMs,
    streaming: { tags: streamingBatch.tags, ranks: streamingBatch.ranks },
    paper: { tags: paperBatch.tags, ranks: paperBatch.ranks, skipped },
    teacher: teacher ? { version: teacher.ranker.version, budgetMs: teacher.budgetMs, runs: teacherRuns, cutByBudget } : null,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The harness's record of a run: the true item's rank in the teacher's order (the serving order if it failed). */
function teacherRun({ answer, serving }: SampledRun, labelled: LabelledCase, caseIndex: number): TeacherRun {
  const order =
    answer.ranking ??
    labelled.case.candidates
      .map((c, i) => ({ id: c.itemId, score: serving[i]!, i }))
      .sort((a, b) => b.score - a.score || a.i - b.i)
      .map((c) => c.id);
  return {
    caseIndex,
    eventId: labelled.case.eventId,
    rank: order.indexOf(labelled.itemId),
    completed: answer.ranking !== null,
    failure: answer.failure,
    ms: answer.ms,
  };
}

/** Frozen cases waiting to be scored; every system scores each batch, so all see identical cases. */
class Batch {
  readonly tags: CaseTags[] = [];
  readonly ranks: number[][];
  private pending: LabelledCase[] = [];

  constructor(
    private readonly scorers: readonly Scorer[],
    private readonly depth: number,
    private readonly size: number,
  ) {
    this.ranks = scorers.map(() => []);
  }

  async add(labelled: LabelledCase, tags: CaseTags): Promise<void> {
    this.tags.push(tags);
    this.pending.push(labelled);
    if (this.pending.length >= this.size) await this.flush();
  }

  async flush(): Promise<void> {
    const cases = this.pending;
    this.pending = [];
    if (cases.length === 0) return;
    for (let s = 0; s < this.scorers.length; s++) {
      const ranks = await rankCases(this.scorers[s]!, cases, this.depth, cases.length);
      this.ranks[s]!.push(...ranks);
    }
  }
}
