import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import type { ScoringCase } from '../src/domain/evidence.ts';
import type { ExecutionProvider } from '../src/star/onnx/scorer.ts';
import { OnnxStarScorer } from '../src/star/onnx/scorer.ts';
import { parseScoringCase } from '../src/star/prompt/case-schema.ts';
import { loadPromptSpec } from '../src/star/prompt/spec.ts';
import { modelFiles, readManifest } from '../src/star/registry/manifest.ts';
import { readParity } from '../src/star/registry/parity.ts';
import { percentile } from '../src/util/stats.ts';

/**
 * STAR scoring speed, on the provider asked for (CPU unless `executionProvider: 'cuda'`):
 *
 * 1. latency: one candidate list at a time through the full path (render, tokenize, encode, run), p50/p99;
 * 2. throughput: `concurrency` clients ranking lists at once through `score()`, so the micro-batcher merges
 *    them: lists/s, with the mean lists per forward pass;
 * 3. the share of the full path that is inference: the same batches of `ratioBatchLists` lists timed as
 *    bare `session.run` on already-encoded inputs and as the full path; `bare / full` (target ≥ 0.7).
 *
 * Lists come from a case file (`starstream cases export`, distinct lists, so the tokenizer cache starts
 * cold as in a fresh process) or, by default, the model's own parity cases. The caller owns printing.
 */

export interface BenchStarOptions {
  /** Case file to take lists from; default: the model's parity.jsonl cases. */
  readonly casesFile?: string;
  /** Lists to load from the case file. @default 2000 */
  readonly lists?: number;
  /** Measured single-list calls. @default 300 */
  readonly latencyCalls?: number;
  /** Concurrent clients in the throughput run. @default 32 */
  readonly concurrency?: number;
  /** Lists scored in the throughput run. @default 2000 */
  readonly throughputLists?: number;
  /** Lists per batch in the ratio run. @default 16 */
  readonly ratioBatchLists?: number;
  /** @default 'cpu' */
  readonly executionProvider?: ExecutionProvider;
  /** onnxruntime threads per operator; 0 = all cores. @default 0 */
  readonly intraOpThreads?: number;
  /** @default 2 */
  readonly maxWaitMs?: number;
  /** @default 512 */
  readonly maxBatchCandidates?: number;
}

export interface BenchStarRow {
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  readonly note: string;
}

export async function benchStar(modelDir: string, opts: BenchStarOptions = {}): Promise<BenchStarRow[]> {
  const manifest = readManifest(modelDir);
  const lists = opts.casesFile ? await readCases(opts.casesFile, opts.lists ?? 2_000) : readParity(modelFiles(modelDir).parity).map((p) => p.case);
  if (lists.length === 0) throw new Error('no lists to score');
  const scorer = await OnnxStarScorer.load(modelDir, manifest, loadPromptSpec(), {
    executionProvider: opts.executionProvider ?? 'cpu',
    intraOpThreads: opts.intraOpThreads ?? 0,
    maxWaitMs: opts.maxWaitMs ?? 2,
    maxBatchCandidates: opts.maxBatchCandidates ?? 512,
  });
  const provider = scorer.executionProvider;
  const at = (i: number): ScoringCase => lists[i % lists.length]!;
  const candidates = Math.round(lists.reduce((n, c) => n + c.candidates.length, 0) / lists.length);
  const where = `${provider}, ${cpus().length} cores, model ${scorer.modelVersion}, ${candidates} candidates/list`;
  try {
    // Ratio first, while the tokenizer cache is cold: every batch is rendered and tokenized for real.
    const batch = opts.ratioBatchLists ?? 16;
    let bare = 0;
    let full = 0;
    await scorer.infer(scorer.encoder.encode(lists.slice(-batch))); // one-off session warm-up
    for (let i = 0; i + batch <= Math.min(lists.length - batch, 40 * batch); i += batch) {
      const cases = lists.slice(i, i + batch);
      const t0 = performance.now();
      await scorer.infer(scorer.encoder.encode(cases));
      const t1 = performance.now();
      const encoded = scorer.encoder.encode(cases);
      const t2 = performance.now();
      await scorer.infer(encoded);
      full += t1 - t0;
      bare += performance.now() - t2;
    }
    const ratio = bare / full;

    const warm = Math.min(30, opts.latencyCalls ?? 300);
    for (let i = 0; i < warm; i++) await scorer.scoreNow([at(i)]);
    const latencies: number[] = [];
    const calls = opts.latencyCalls ?? 300;
    for (let i = 0; i < calls; i++) {
      const t = performance.now();
      await scorer.scoreNow([at(i + 1_000)]);
      latencies.push(performance.now() - t);
    }

    const total = opts.throughputLists ?? 2_000;
    const concurrency = opts.concurrency ?? 32;
    const before = { ...scorer.batchStats };
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) await scorer.score([at(next++)]);
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const batches = scorer.batchStats.batches - before.batches;

    return [
      { metric: 'latency p50, one list', value: percentile(latencies, 50), unit: 'ms', note: where },
      { metric: 'latency p99, one list', value: percentile(latencies, 99), unit: 'ms', note: where },
      { metric: 'throughput, micro-batched', value: total / seconds, unit: 'lists/s', note: `${concurrency} concurrent clients, ${(total / Math.max(1, batches)).toFixed(1)} lists per forward pass; ${where}` },
      { metric: 'bare inference / full path', value: ratio, unit: 'ratio', note: `batches of ${batch} lists, tokenizer cache cold; full = render + tokenize + encode + run; target ≥ 0.7` },
    ];
  } finally {
    await scorer.close();
  }
}

async function readCases(file: string, limit: number): Promise<ScoringCase[]> {
  const out: ScoringCase[] = [];
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    out.push(parseScoringCase((JSON.parse(line) as { case: unknown }).case));
    if (out.length >= limit) break;
  }
  lines.close();
  return out;
}

export function starBenchTable(rows: readonly BenchStarRow[]): string {
  return (
    '| metric | value | unit | note |\n|---|---|---|---|\n' +
    rows.map((r) => `| ${r.metric} | ${r.unit === 'ratio' ? r.value.toFixed(2) : r.value.toFixed(r.value < 10 ? 2 : 0)} | ${r.unit} | ${r.note} |`).join('\n') +
    '\n'
  );
}

/** `node --import tsx bench/star.ts [modelDir] [cases.jsonl] [outDir]`: prints the table and saves it as star-bench.{md,json}. */
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [modelDir = join('test', 'fixtures', 'star-tiny'), casesFile, outDir = join('bench', 'results')] = process.argv.slice(2);
  const rows = await benchStar(modelDir, casesFile ? { casesFile } : {});
  const table = starBenchTable(rows);
  process.stdout.write(table);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'star-bench.md'), table);
  await writeFile(join(outDir, 'star-bench.json'), `${JSON.stringify(rows, null, 2)}\n`);
}
