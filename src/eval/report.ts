import type { HarnessOptions, HarnessResult, HarnessSystem, ProtocolCases } from './harness.ts';
import { paperMetrics, streamingMetrics, type PaperMetrics, type StreamingMetrics } from './lists.ts';
import { barChartSvg, stackSvg } from './plot.ts';
import { SLICES, type SliceRules } from './slices.ts';

/**
 * The harness's report: metrics of every system per protocol and per scenario slice, each slice with its
 * case count, plus what is needed to reproduce it (data set, seeds, split, model versions). Rendered as a
 * terminal table, a Markdown file, JSON and an SVG plot.
 */

export const EVAL_REPORT_VERSION = 'eval-1';

/** Where the teacher ranked: the harness scores every system on the same sample. */
export const TEACHER_SLICE = 'teacher-sample';

export const SLICE_DEFINITIONS = (r: SliceRules): Record<string, string> => ({
  all: 'every case',
  'cold-user': `the user had fewer than ${r.coldUserMinInteractions} interactions before the event`,
  'cold-item': `the true next item had fewer than ${r.coldItemMinInteractions} interactions (any user) before the event`,
  evolving:
    `the category mix of the user's last ${r.recentItems} items is at total-variation distance ≥ ${r.minDistance} from that of ` +
    `all their earlier items (at least ${r.minLongTermItems} of them)`,
  [TEACHER_SLICE]: 'the paper cases the teacher ranked (a sample sized to its time budget)',
});

export interface SliceResult<M> {
  readonly slice: string;
  readonly cases: number;
  readonly rows: readonly ({ readonly system: string } & M)[];
}

export interface EvalReport {
  readonly version: string;
  readonly dataset: { readonly name: string; readonly events: number; readonly items: number };
  readonly measuredAt: string;
  readonly seconds: number;
  readonly seeds: { readonly paper: number; readonly engine: number };
  readonly split: {
    readonly streaming: { readonly warmupShare: number; readonly every: number; readonly k: number; readonly cases: number };
    readonly paper: {
      readonly testShare: number;
      readonly testFrom: string;
      readonly every: number;
      readonly candidates: number;
      readonly negativeSampler: string;
      readonly cases: number;
      readonly skipped: { readonly repeat: number; readonly fewItems: number };
    };
  };
  readonly slices: { readonly rules: SliceRules; readonly definitions: Record<string, string> };
  /** `paperVersion`: the paper protocol's own scorer's, for a system that has one (`HarnessSystem.paperScorer`). */
  readonly systems: readonly { readonly name: string; readonly version: string; readonly paperVersion?: string; readonly source: string | null }[];
  readonly teacher: {
    readonly version: string;
    readonly budgetSeconds: number;
    readonly runs: number;
    readonly completed: number;
    readonly failures: Record<string, number>;
    readonly cutByBudget: number;
    readonly meanSeconds: number;
  } | null;
  readonly streaming: readonly SliceResult<StreamingMetrics>[];
  readonly paper: readonly SliceResult<PaperMetrics>[];
}

export interface ReportContext {
  readonly dataset: { readonly name: string; readonly items: number };
  readonly engineSeed: number;
  readonly options: HarnessOptions;
  readonly systems: readonly HarnessSystem[];
  readonly measuredAt?: Date;
}

export function buildReport(result: HarnessResult, ctx: ReportContext): EvalReport {
  const { options, systems } = ctx;
  const k = options.streaming.k;
  const names = systems.map((s) => s.name);
  const streaming = SLICES.map((slice) => sliceOf(slice, result.streaming, names, (ranks) => streamingMetrics(ranks, k)));
  const paper: SliceResult<PaperMetrics>[] = SLICES.map((slice) => sliceOf(slice, result.paper, names, paperMetrics));
  const teacher = result.teacher;
  if (teacher) {
    const idx = teacher.runs.map((r) => r.caseIndex);
    paper.push({
      slice: TEACHER_SLICE,
      cases: idx.length,
      rows: [
        ...names.map((system, s) => ({ system, ...paperMetrics(idx.map((i) => result.paper.ranks[s]![i]!)) })),
        { system: 'teacher', ...paperMetrics(teacher.runs.map((r) => r.rank)) },
      ],
    });
  }
  const failures: Record<string, number> = {};
  for (const run of teacher?.runs ?? []) {
    if (run.failure) {
      const code = run.failure.split(':')[0]!;
      failures[code] = (failures[code] ?? 0) + 1;
    }
  }
  return {
    version: EVAL_REPORT_VERSION,
    dataset: { name: ctx.dataset.name, events: result.events, items: ctx.dataset.items },
    measuredAt: (ctx.measuredAt ?? new Date()).toISOString(),
    seconds: result.seconds,
    seeds: { paper: options.paper.seed, engine: ctx.engineSeed },
    split: {
      streaming: { ...options.streaming, cases: result.streaming.tags.length },
      paper: {
        testShare: options.paper.testShare,
        testFrom: new Date(result.splitAtMs).toISOString(),
        every: options.paper.every,
        candidates: options.paper.candidates,
        negativeSampler: options.paper.negativeSampler,
        cases: result.paper.tags.length,
        skipped: result.paper.skipped,
      },
    },
    slices: { rules: options.slices, definitions: SLICE_DEFINITIONS(options.slices) },
    systems: systems.map((s) => ({ name: s.name, version: s.scorer.modelVersion, ...(s.paperScorer ? { paperVersion: s.paperScorer.modelVersion } : {}), source: s.source ?? null })),
    teacher: teacher
      ? {
          version: teacher.version,
          budgetSeconds: teacher.budgetMs / 1000,
          runs: teacher.runs.length,
          completed: teacher.runs.filter((r) => r.completed).length,
          failures,
          cutByBudget: teacher.cutByBudget,
          meanSeconds: teacher.runs.length ? teacher.runs.reduce((a, r) => a + r.ms, 0) / teacher.runs.length / 1000 : 0,
        }
      : null,
    streaming,
    paper,
  };
}

function sliceOf<M>(slice: string, cases: ProtocolCases, names: readonly string[], metrics: (ranks: number[]) => M): SliceResult<M> {
  const idx: number[] = [];
  cases.tags.forEach((t, i) => {
    if ((t.slices as readonly string[]).includes(slice)) idx.push(i);
  });
  return { slice, cases: idx.length, rows: names.map((system, s) => ({ system, ...metrics(idx.map((i) => cases.ranks[s]![i]!)) })) };
}

/** Plain-text tables for the terminal (and, with `markdown`, for the `.md` file). */
export function reportTables(report: EvalReport, markdown = false): string {
  const p = report.split.paper;
  const st = report.split.streaming;
  const paperHead = ['slice', 'cases', 'system', 'HR@1', 'HR@3', 'HR@5', 'avg HR×100', 'NDCG@10'];
  // A slice without cases has no metrics: one line says so instead of a row of zeros per system.
  const empty = (s: { slice: string }, width: number): string[] => [s.slice, '0', '(no cases)', ...Array<string>(width).fill('—')];
  const paperRows = report.paper.flatMap((s) =>
    s.cases === 0
      ? [empty(s, 5)]
      : s.rows.map((r) => [s.slice, String(s.cases), r.system, f3(r.hr1), f3(r.hr3), f3(r.hr5), r.avg.toFixed(1), f3(r.ndcg10)]),
  );
  const streamHead = ['slice', 'cases', 'system', `hit@${st.k}`, `NDCG@${st.k}`];
  const streamRows = report.streaming.flatMap((s) =>
    s.cases === 0 ? [empty(s, 2)] : s.rows.map((r) => [s.slice, String(s.cases), r.system, f4(r.hitRate), f4(r.ndcg)]),
  );
  const lines = [
    `${report.dataset.name}: ${report.dataset.events} events, paper seed ${report.seeds.paper}, engine seed ${report.seeds.engine}`,
    '',
    `paper protocol: true next item + ${p.candidates - 1} ${p.negativeSampler} negatives; events from ${p.testFrom} ` +
      `(last ${p.testShare * 100}% of time), every ${p.every}th`,
    table(paperHead, paperRows, markdown),
    '',
    `streaming protocol: recommend, then learn; full candidate set; events after the first ${st.warmupShare * 100}%` +
      (st.every > 1 ? `, every ${st.every}th` : ''),
    table(streamHead, streamRows, markdown),
  ];
  if (report.teacher) {
    const t = report.teacher;
    const failures = Object.entries(t.failures).map(([c, n]) => `${c} ${n}`).join(', ') || 'none';
    lines.push(
      '',
      t.runs === 0
        ? `teacher ${t.version}: no run finished within the ${t.budgetSeconds}s budget (runs cut by it: ${t.cutByBudget}); raise --teacher-budget-s`
        : `teacher ${t.version}: ${t.runs} runs in a ${t.budgetSeconds}s budget (${t.completed} completed, mean ${t.meanSeconds.toFixed(1)}s; ` +
            `failures: ${failures}; cut by the budget: ${t.cutByBudget}); failed runs keep the serving order`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function table(head: readonly string[], rows: readonly (readonly string[])[], markdown: boolean): string {
  if (markdown) {
    return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  }
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const fmt = (r: readonly string[]): string => `  ${r.map((v, c) => (c < 3 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ')}`;
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

/** Two bar charts in one SVG: average HR per slice (paper protocol) and hit@K per slice (streaming). */
export function reportSvg(report: EvalReport): string {
  const systems = [...new Set(report.paper.flatMap((s) => s.rows.map((r) => r.system)))];
  const label = (s: { slice: string; cases: number }): string => `${s.slice} (${s.cases})`;
  const value = <M>(s: SliceResult<M>, system: string, pick: (m: M) => number): number => {
    const row = s.rows.find((r) => r.system === system);
    return row && s.cases > 0 ? pick(row) : Number.NaN;
  };
  const paper = barChartSvg({
    title: `${report.dataset.name}: paper protocol, average of HR@1/3/5 (×100) per slice`,
    metrics: report.paper.map(label),
    series: systems.map((name) => ({ name, values: report.paper.map((s) => value(s, name, (m) => m.avg)) })),
  });
  const streaming = barChartSvg({
    title: `${report.dataset.name}: streaming protocol, hit@${report.split.streaming.k} per slice`,
    metrics: report.streaming.map(label),
    series: systems.filter((n) => n !== 'teacher').map((name) => ({ name, values: report.streaming.map((s) => value(s, name, (m) => m.hitRate)) })),
  });
  return stackSvg([paper, streaming]);
}

const f3 = (v: number): string => v.toFixed(3);
const f4 = (v: number): string => v.toFixed(4);
