import { existsSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatSeconds } from '../src/cli/progress.ts';
import { loadConfig } from '../src/config/load.ts';
import type { Config, ConfigInput } from '../src/config/schema.ts';
import { generateCatalogue, generateStream, type SyntheticInput } from '../src/data/synthetic.ts';
import type { ScoringCase } from '../src/domain/evidence.ts';
import type { Interaction } from '../src/domain/events.ts';
import type { TeacherCase, Trajectory } from '../src/domain/teacher.ts';
import { barChartSvg } from '../src/eval/plot.ts';
import type { LogRecord } from '../src/eventlog/port.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildEngine, buildProcessor, type Engine } from '../src/main.ts';
import { createBaselineScorer } from '../src/star/baseline/scorer.ts';
import type { Scorer } from '../src/star/port.ts';
import { openScorerHandle } from '../src/star/registry/open.ts';
import { AGENTS } from '../src/teacher/agents/roles.ts';
import { NO_TEACHER_INSTRUMENTS } from '../src/teacher/instruments.ts';
import { DEFAULT_TEACHER_LIMITS, failureCodeOf, type TeacherLimits } from '../src/teacher/limits.ts';
import { createLanguageModel } from '../src/teacher/llm/create.ts';
import { defaultModelPath } from '../src/teacher/llm/llama/model-path.ts';
import type { LanguageModel } from '../src/teacher/llm/port.ts';
import { runTeacher } from '../src/teacher/run.ts';
import { percentile } from '../src/util/stats.ts';
import { RESULTS_DIR, machine, runAsScript, save, type Row } from './report.ts';

/**
 * The MARS teacher against the student, on the same cases (issue 6: "teacher wall time per case and per agent,
 * and STAR's time for the same cases, side by side, with the ratio").
 *
 * 1. cases: a generated stream goes through the pipeline's own processor (`buildProcessor`, baseline ranker,
 *    sampling on with the configured strategies and `candidatesPerCase`): the first `warmShare` of it is learned
 *    with ranking off, the rest is ranked and the sampler cuts cases from it, exactly as the side stream does;
 *    `cases` of them, evenly spaced over what it cut, are benchmarked;
 * 2. student: STAR (a model directory loaded and parity-checked through `openScorerHandle`, the ONNX scorer
 *    behind the micro-batcher, as the pipeline serves it) and the baseline ranker score those cases, one case
 *    per `score()` call (single) and all of them in one call (batched, time divided by the cases), `starRepeats`
 *    times after a first, cold pass;
 * 3. teacher: `runTeacher` on each case, one at a time, with the embedded backend (node-llama-cpp on the GGUF
 *    `npm run teacher:model` fetches) on `threads` CPU threads and `teacher.limits` (the defaults unless a flag
 *    changes one): wall time, time per agent (its LLM calls and tool calls), turns, tool calls, tokens, failures.
 *
 * Prints a table and saves bench/results/teacher.{md,json}, teacher.svg (time per case, log scale) and
 * teacher-agents.svg. Throws (non-zero exit) when the teacher model file is not there.
 */

export interface TeacherBenchOptions {
  /** Cases run through the teacher (and the scorers). @default 6 */
  readonly cases: number;
  /** Candidates per case; unset = `sampling.candidatesPerCase` (the sampler's default). */
  readonly candidates?: number;
  /** llama.cpp threads (`teacher.llm.threads`). @default 1 */
  readonly threads: number;
  /** The GGUF file; unset = `teacher.llm.modelPath`, else where `npm run teacher:model` puts it. */
  readonly modelPath?: string;
  /** Overrides of `teacher.limits` (the schema's defaults otherwise). */
  readonly limits: Partial<TeacherLimits>;
  /** STAR model directory. @default test/fixtures/star-tiny */
  readonly starModelDir: string;
  /** Measured passes over the cases per scorer, after one cold pass. @default 100 */
  readonly starRepeats: number;
  /** The generated stream the cases are cut from. */
  readonly world: Required<Pick<SyntheticInput, 'users' | 'items' | 'events' | 'seed'>>;
  /** Share of the stream learned with ranking off before the sampler sees events. @default 0.8 */
  readonly warmShare: number;
}

export const DEFAULT_TEACHER_BENCH: TeacherBenchOptions = {
  cases: 6,
  threads: 1,
  limits: {},
  starModelDir: join('test', 'fixtures', 'star-tiny'),
  starRepeats: 100,
  world: { users: 200, items: 400, events: 6_000, seed: 5 },
  warmShare: 0.8,
};

const LIMIT_FLAGS = Object.keys(DEFAULT_TEACHER_LIMITS).map((key) => [kebab(key), key as keyof TeacherLimits] as const);

/**
 * Options from the command line over `base`: `--cases=N`, `--candidates=N`, `--threads=N`, `--model=FILE`,
 * `--star-model=DIR`, `--star-repeats=N`, and one flag per teacher limit (`--max-wall-ms=…`,
 * `--max-analyst-turns=…`, …). Values go with `=`; positionals (the suite names) are ignored.
 */
export function teacherBenchArgs(argv: readonly string[], base: TeacherBenchOptions = DEFAULT_TEACHER_BENCH): TeacherBenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      cases: { type: 'string' },
      candidates: { type: 'string' },
      threads: { type: 'string' },
      model: { type: 'string' },
      'star-model': { type: 'string' },
      'star-repeats': { type: 'string' },
      ...Object.fromEntries(LIMIT_FLAGS.map(([flag]) => [flag, { type: 'string' as const }])),
    },
  });
  const v = values as Record<string, string | undefined>;
  const int = (flag: string): number | undefined => {
    const raw = v[flag];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${flag}=${raw}: expected a non-negative integer`);
    return n;
  };
  const limits: Partial<Record<keyof TeacherLimits, number>> = { ...base.limits };
  for (const [flag, key] of LIMIT_FLAGS) {
    const n = int(flag);
    if (n !== undefined) limits[key] = n;
  }
  const cases = int('cases') ?? base.cases;
  if (cases < 1) throw new Error('--cases must be at least 1');
  const candidates = int('candidates') ?? base.candidates;
  return {
    ...base,
    cases,
    threads: int('threads') ?? base.threads,
    starRepeats: Math.max(1, int('star-repeats') ?? base.starRepeats),
    starModelDir: v['star-model'] ?? base.starModelDir,
    limits,
    ...(candidates !== undefined ? { candidates } : {}),
    ...(v.model !== undefined ? { modelPath: v.model } : base.modelPath !== undefined ? { modelPath: base.modelPath } : {}),
  };
}

/** What one teacher run cost, from its trajectory. */
interface CaseRun {
  readonly caseId: string;
  readonly reason: string;
  readonly candidates: number;
  readonly status: Trajectory['status'];
  readonly failure: string | null;
  readonly wallMs: number;
  /** Per agent: its LLM calls and its tool calls, ms (the recorder's `agentMs`). */
  readonly agentMs: Readonly<Record<string, number>>;
  readonly agentTurns: Readonly<Record<string, number>>;
  readonly turns: number;
  readonly malformedTurns: number;
  readonly toolCalls: number;
  readonly toolErrors: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Time inside LLM calls, ms. */
  readonly llmMs: number;
  readonly rankingRepaired: boolean;
}

interface ScorerTimes {
  readonly name: string;
  /** ms per case, one case per `score()` call. */
  readonly single: number[];
  /** ms per case, all cases in one `score()` call (the call's time divided by the cases). */
  readonly batched: number[];
  /** ms per case of the first, cold pass, one case per call. */
  readonly cold: number[];
}

export async function benchTeacher(options: TeacherBenchOptions = DEFAULT_TEACHER_BENCH): Promise<Row[]> {
  const config = loadConfig({ overrides: benchConfig(options) });
  const modelPath = config.teacher.llm.modelPath ?? defaultModelPath();
  if (!existsSync(modelPath)) {
    throw new Error(`teacher bench: the teacher model is not available: no file at ${modelPath} (run \`npm run teacher:model\`, or pass --model=FILE)`);
  }
  const started = performance.now();
  const say = (line: string): void => void process.stderr.write(`[teacher bench ${formatSeconds((performance.now() - started) / 1000)}] ${line}\n`);

  const engine = buildEngine(config);
  await engine.store.init();
  try {
    const { cases, sampled } = await cutCases(engine, options, say);
    const byReason = countBy(cases.map((c) => c.reason));
    say(`${cases.length} cases of the ${sampled} the sampler cut (${Object.entries(byReason).map(([r, n]) => `${r} ${n}`).join(', ')})`);

    const scoring = cases.map(toScoringCase);
    const star = await openScorerHandle(loadConfig({ overrides: { ranking: { scorer: 'star', modelDir: options.starModelDir, registryPollMs: 0 } } }), engine.templates, silentLogger());
    let starTimes: ScorerTimes;
    try {
      say(`scoring the cases with ${star.version} (${star.executionProvider ?? 'cpu'}), ${options.starRepeats} passes`);
      starTimes = await timeScorer(`STAR (${star.version})`, star.current(), scoring, options.starRepeats);
    } finally {
      await star.close();
    }
    const baseline = createBaselineScorer();
    say(`scoring the cases with ${baseline.modelVersion}, ${options.starRepeats} passes`);
    const baselineTimes = await timeScorer(`baseline (${baseline.modelVersion})`, baseline, scoring, options.starRepeats);
    await baseline.close();

    say(`loading ${basename(modelPath)} (llama, ${config.teacher.llm.threads} thread(s), context ${config.teacher.llm.contextSize})`);
    const loadStart = performance.now();
    const model = await createLanguageModel(config.teacher.llm, silentLogger());
    const modelLoadMs = performance.now() - loadStart;
    const runs: CaseRun[] = [];
    try {
      for (const [i, c] of cases.entries()) runs.push(await teachOne(c, i, cases.length, runs, engine, config, model, say));
    } finally {
      await model.close();
    }

    const rows = reportRows(runs, starTimes, baselineTimes);
    const meta = {
      machine: `${machine()}; teacher: llama (node-llama-cpp), ${basename(modelPath)}, ${config.teacher.llm.threads} thread(s), context ${config.teacher.llm.contextSize}; STAR on ${star.executionProvider ?? 'cpu'}`,
      options,
      limits: config.teacher.limits,
      teacherModel: { backend: model.backend, model: model.model, path: modelPath, loadSeconds: modelLoadMs / 1000 },
      casesSampled: sampled,
      casesByReason: byReason,
      cases: runs,
      scorers: [starTimes, baselineTimes].map((t) => ({ name: t.name, single: summary(t.single), batched: summary(t.batched), cold: summary(t.cold) })),
      totalSeconds: (performance.now() - started) / 1000,
    };
    save('teacher', `MARS teacher vs STAR on the same ${runs.length} sampled cases`, rows, meta);
    writeFileSync(join(RESULTS_DIR, 'teacher.svg'), timesSvg(runs, [starTimes, baselineTimes]));
    writeFileSync(join(RESULTS_DIR, 'teacher-agents.svg'), agentsSvg(runs));
    process.stdout.write('saved bench/results/teacher.svg, bench/results/teacher-agents.svg\n');
    return rows;
  } finally {
    await engine.store.close();
  }
}

function benchConfig(options: TeacherBenchOptions): ConfigInput {
  return {
    sampling: { enabled: true, ...(options.candidates !== undefined ? { candidatesPerCase: options.candidates } : {}) },
    teacher: {
      llm: { backend: 'llama', threads: options.threads, ...(options.modelPath !== undefined ? { modelPath: options.modelPath } : {}) },
      limits: options.limits,
    },
  };
}

/**
 * Cases as the side stream cuts them: the pipeline's processor (with its sampler) over a generated stream,
 * the catalogue loaded first (in the stream it comes on the items topic). Returns `options.cases` of the cut
 * cases, evenly spaced, and how many were cut.
 */
async function cutCases(engine: Engine, options: TeacherBenchOptions, say: (line: string) => void): Promise<{ cases: TeacherCase[]; sampled: number }> {
  const world = options.world;
  await engine.store.putItemMetadata(generateCatalogue(world).map((i) => ({ itemId: i.itemId, title: i.title, categories: i.categories })));
  const processor = buildProcessor(engine);
  const events = [...generateStream(world)];
  const warm = Math.floor(events.length * options.warmShare);
  say(`cutting cases: learning ${warm.toLocaleString('en-US')} generated events, then ranking and sampling ${(events.length - warm).toLocaleString('en-US')}`);
  const cut: TeacherCase[] = [];
  const batch = 200;
  for (let at = 0; at < events.length; ) {
    // Batches never straddle the warm-up boundary: ranking (and so sampling) is on for whole batches only.
    processor.rankingEnabled = at >= warm;
    const end = Math.min(processor.rankingEnabled ? events.length : warm, at + batch);
    const out = await processor.process(events.slice(at, end).map((e, k) => toRecord(engine, e, at + k)));
    const letter = out.deadLetters[0];
    if (letter) throw new Error(`a generated event was dead-lettered: ${letter.code}: ${letter.reason}`);
    cut.push(...out.teacherCases);
    at = end;
  }
  if (cut.length < options.cases) throw new Error(`the sampler cut ${cut.length} cases; ${options.cases} wanted (a larger world is needed)`);
  const picked = Array.from({ length: options.cases }, (_, k) => cut[Math.floor(((k + 0.5) * cut.length) / options.cases)]!);
  return { cases: picked, sampled: cut.length };
}

function toRecord(engine: Engine, event: Interaction, offset: number): LogRecord {
  return {
    topic: 'interactions',
    partition: 0,
    offset: String(offset),
    key: Buffer.from(event.userId, 'utf8'),
    value: engine.codecs.interaction.encode(event),
    headers: {},
    timestampMs: event.timestampMs,
  };
}

function toScoringCase(c: TeacherCase): ScoringCase {
  return { eventId: c.eventId, atMs: c.atMs, user: c.user, candidates: c.candidates };
}

/** One cold pass (one case per call), then `repeats` passes of single calls and one batched call each. */
async function timeScorer(name: string, scorer: Scorer, cases: readonly ScoringCase[], repeats: number): Promise<ScorerTimes> {
  const cold: number[] = [];
  for (const c of cases) cold.push(await timed(() => scorer.score([c])));
  await scorer.score(cases);
  const single: number[] = [];
  const batched: number[] = [];
  for (let r = 0; r < repeats; r++) {
    for (const c of cases) single.push(await timed(() => scorer.score([c])));
    batched.push((await timed(() => scorer.score(cases))) / cases.length);
  }
  return { name, single, batched, cold };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Runs the teacher on one case, printing progress (per case, and every 15 s while one runs). */
async function teachOne(
  c: TeacherCase,
  index: number,
  total: number,
  done: readonly CaseRun[],
  engine: Engine,
  config: Readonly<Config>,
  model: LanguageModel,
  say: (line: string) => void,
): Promise<CaseRun> {
  const label = `case ${index + 1}/${total}`;
  /** `left` cases at the mean time of `runs`, less `elapsedMs` already spent on them. */
  const eta = (runs: readonly CaseRun[], left: number, elapsedMs = 0): string => {
    if (runs.length === 0) return '?';
    const mean = sum(runs.map((r) => r.wallMs)) / runs.length;
    return formatSeconds(Math.max(0, mean * left - elapsedMs) / 1000);
  };
  say(`${label} ${c.caseId} (${c.reason}, ${c.candidates.length} candidates): started; ETA ${eta(done, total - index)}`);
  let turns = 0;
  let lastAgent = '';
  let lastPrinted = performance.now();
  const t0 = performance.now();
  const instruments = {
    ...NO_TEACHER_INSTRUMENTS,
    llmCall: (agent: string) => {
      turns++;
      lastAgent = agent;
      if (performance.now() - lastPrinted < 15_000) return;
      lastPrinted = performance.now();
      const elapsed = performance.now() - t0;
      say(`${label}: ${turns} turns, last ${lastAgent}, ${formatSeconds(elapsed / 1000)} in; ETA ${eta(done, total - index, elapsed)}`);
    },
  };
  const trajectory = await runTeacher(c, {
    model,
    store: engine.store,
    limits: config.teacher.limits,
    templates: engine.templates,
    evidence: engine.caseOptions.evidence,
    instruments,
  });
  const wallMs = performance.now() - t0;
  const run = caseRun(c, trajectory, wallMs);
  const outcome = run.status === 'completed' ? 'completed' : `failed (${run.failure})`;
  say(
    `${label} ${outcome} in ${(wallMs / 1000).toFixed(1)} s: ${run.turns} turns, ${run.toolCalls} tool calls, ` +
      `${run.promptTokens}+${run.completionTokens} tokens; ETA ${eta([...done, run], total - index - 1)}`,
  );
  return run;
}

function caseRun(c: TeacherCase, t: Trajectory, wallMs: number): CaseRun {
  const agentMs: Record<string, number> = {};
  const agentTurns: Record<string, number> = {};
  let toolCalls = 0;
  let toolErrors = 0;
  let rankingRepaired = false;
  for (const turn of t.turns) {
    agentMs[turn.agent] = (agentMs[turn.agent] ?? 0) + turn.ms;
    agentTurns[turn.agent] = (agentTurns[turn.agent] ?? 0) + 1;
  }
  for (const s of t.steps) {
    if (s.kind === 'tool_call') toolCalls++;
    if (s.kind === 'tool_response') {
      if (s.error) toolErrors++;
      if (s.ms !== undefined) agentMs[s.agent] = (agentMs[s.agent] ?? 0) + s.ms;
    }
    if (s.kind === 'recommend' && s.repaired) rankingRepaired = true;
  }
  return {
    caseId: c.caseId,
    reason: c.reason,
    candidates: c.candidates.length,
    status: t.status,
    failure: t.failure,
    wallMs,
    agentMs,
    agentTurns,
    turns: t.turns.length,
    malformedTurns: t.turns.filter((turn) => turn.error !== null).length,
    toolCalls,
    toolErrors,
    promptTokens: t.turns.reduce((s, turn) => s + turn.promptTokens, 0),
    completionTokens: t.turns.reduce((s, turn) => s + turn.completionTokens, 0),
    llmMs: t.turns.reduce((s, turn) => s + turn.ms, 0),
    rankingRepaired,
  };
}

function reportRows(runs: readonly CaseRun[], star: ScorerTimes, baseline: ScorerTimes): Row[] {
  const n = runs.length;
  const wall = runs.map((r) => r.wallMs);
  const wallTotal = sum(wall);
  const completed = runs.filter((r) => r.status === 'completed').length;
  const teacher = `teacher (${n} cases)`;
  const rows: Row[] = [
    { what: teacher, metric: 'wall time per case, p50', value: percentile(wall, 50) / 1000, unit: 's', note: `${completed}/${n} completed` },
    { what: teacher, metric: 'wall time per case, p90', value: percentile(wall, 90) / 1000, unit: 's', note: 'nearest rank' },
    { what: teacher, metric: 'wall time per case, max', value: Math.max(...wall) / 1000, unit: 's', note: `mean ${(wallTotal / n / 1000).toFixed(1)} s` },
  ];
  let agentsTotal = 0;
  for (const agent of AGENTS) {
    const ms = sum(runs.map((r) => r.agentMs[agent] ?? 0));
    agentsTotal += ms;
    const turns = sum(runs.map((r) => r.agentTurns[agent] ?? 0));
    const briefed = runs.filter((r) => (r.agentTurns[agent] ?? 0) > 0).length;
    rows.push({ what: `agent: ${agent}`, metric: 'mean time per case', value: ms / n / 1000, unit: 's', note: `${pct(ms, wallTotal)} of wall; ${(turns / n).toFixed(1)} turns/case; ran in ${briefed}/${n} cases` });
  }
  rows.push({ what: 'agent: (protocol, parsing)', metric: 'mean time per case', value: (wallTotal - agentsTotal) / n / 1000, unit: 's', note: `${pct(wallTotal - agentsTotal, wallTotal)} of wall: outside LLM and tool calls` });
  const prompt = sum(runs.map((r) => r.promptTokens));
  const completion = sum(runs.map((r) => r.completionTokens));
  const llmSeconds = sum(runs.map((r) => r.llmMs)) / 1000;
  rows.push(
    { what: teacher, metric: 'turns per case', value: sum(runs.map((r) => r.turns)) / n, unit: 'LLM calls', note: `${sum(runs.map((r) => r.malformedTurns))} malformed answers in all (retried)` },
    { what: teacher, metric: 'tool calls per case', value: sum(runs.map((r) => r.toolCalls)) / n, unit: 'calls', note: `${sum(runs.map((r) => r.toolErrors))} refused in all` },
    { what: teacher, metric: 'prompt tokens per case', value: prompt / n, unit: 'tokens', note: '' },
    { what: teacher, metric: 'completion tokens per case', value: completion / n, unit: 'tokens', note: '' },
    { what: teacher, metric: 'tokens/s, prompt + completion', value: (prompt + completion) / llmSeconds, unit: 'tokens/s', note: `over ${llmSeconds.toFixed(0)} s inside LLM calls` },
    { what: teacher, metric: 'completion tokens/s', value: completion / llmSeconds, unit: 'tokens/s', note: 'prompt evaluation included in the time' },
    { what: teacher, metric: 'completed', value: completed, unit: 'cases', note: `${runs.filter((r) => r.rankingRepaired).length} with the ranker's answer repaired` },
  );
  for (const [code, count] of Object.entries(countBy(runs.filter((r) => r.status === 'failed').map((r) => failureCodeOf(r.failure) ?? 'INTERNAL')))) {
    const example = runs.find((r) => failureCodeOf(r.failure) === code)?.failure ?? '';
    rows.push({ what: teacher, metric: `failed: ${code}`, value: count, unit: 'cases', note: example.slice(0, 120) });
  }
  for (const t of [star, baseline]) {
    const passes = `${t.single.length / n} passes over the same cases`;
    rows.push(
      { what: t.name, metric: 'time per case, single, p50', value: percentile(t.single, 50), unit: 'ms', note: `one case per score() call; ${passes}` },
      { what: t.name, metric: 'time per case, single, p99', value: percentile(t.single, 99), unit: 'ms', note: '' },
      { what: t.name, metric: 'time per case, batched, p50', value: percentile(t.batched, 50), unit: 'ms', note: `all ${n} cases in one score() call, divided by ${n}` },
      { what: t.name, metric: 'time per case, batched, p99', value: percentile(t.batched, 99), unit: 'ms', note: '' },
      { what: t.name, metric: 'time per case, first (cold) pass, mean', value: sum(t.cold) / n, unit: 'ms', note: 'caches cold, one case per call' },
    );
  }
  const teacherP50 = percentile(wall, 50);
  const ratio = (ms: number): number => Math.round(teacherP50 / Math.max(ms, 1e-6));
  rows.push(
    { what: 'teacher / STAR', metric: 'p50 / single p50', value: ratio(percentile(star.single, 50)), unit: '×', note: 'the paper reports 5.2× between its teacher and student' },
    { what: 'teacher / STAR', metric: 'p50 / batched p50', value: ratio(percentile(star.batched, 50)), unit: '×', note: '' },
    { what: 'teacher / baseline', metric: 'p50 / single p50', value: ratio(percentile(baseline.single, 50)), unit: '×', note: '' },
  );
  return rows;
}

/** Time per case of every system on a log scale (bars in log10 µs, so ms and minutes share one chart). */
function timesSvg(runs: readonly CaseRun[], scorers: readonly ScorerTimes[]): string {
  const log = (ms: number): number => Math.max(0, Math.log10(ms * 1000));
  const wall = runs.map((r) => r.wallMs);
  return barChartSvg({
    title: 'Time per case, log10 µs (3 = 1 ms, 6 = 1 s, 7.8 = 1 min), same cases',
    metrics: ['p50', 'p90', 'max'],
    series: [
      { name: 'MARS teacher', values: [percentile(wall, 50), percentile(wall, 90), Math.max(...wall)].map(log) },
      ...scorers.flatMap((t) => [
        { name: `${t.name.split(' ')[0]} single`, values: [percentile(t.single, 50), percentile(t.single, 90), Math.max(...t.single)].map(log) },
        { name: `${t.name.split(' ')[0]} batched`, values: [percentile(t.batched, 50), percentile(t.batched, 90), Math.max(...t.batched)].map(log) },
      ]),
    ],
  });
}

function agentsSvg(runs: readonly CaseRun[]): string {
  const n = runs.length;
  return barChartSvg({
    title: `MARS teacher: mean seconds per case by agent (${n} cases)`,
    metrics: [...AGENTS],
    series: [{ name: 'seconds per case', values: AGENTS.map((a) => sum(runs.map((r) => r.agentMs[a] ?? 0)) / n / 1000) }],
  });
}

function summary(ms: readonly number[]): { p50: number; p90: number; p99: number; max: number; n: number } {
  return { p50: percentile(ms, 50), p90: percentile(ms, 90), p99: percentile(ms, 99), max: Math.max(...ms), n: ms.length };
}

function countBy(keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

function sum(values: readonly number[]): number {
  return values.reduce((s, v) => s + v, 0);
}

function pct(part: number, whole: number): string {
  return `${((100 * part) / Math.max(whole, 1e-9)).toFixed(1)}%`;
}

function kebab(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `node --import tsx bench/teacher.ts [--cases=N] [--max-wall-ms=…]…`: same as `npm run bench -- teacher`. */
runAsScript(import.meta.url, async () => {
  await benchTeacher(teacherBenchArgs(process.argv.slice(2)));
});
