import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { paperMetrics, rankCases, type LabelledCase, type PaperMetrics } from '../src/eval/lists.ts';
import { barChartSvg } from '../src/eval/plot.ts';
import { cooccurrenceScorer, embeddingScorer, loadStarScorer, popularityScorer } from '../src/eval/systems.ts';
import { createBaselineScorer } from '../src/star/baseline/scorer.ts';
import type { Scorer } from '../src/star/port.ts';
import { parseScoringCase } from '../src/star/prompt/case-schema.ts';
import { runAsScript } from './report.ts';

/**
 * Quality on the paper's protocol: every test case of a case file (`starstream cases export`) is a list of
 * the true next item and sampled negatives; each system ranks the list, and we report HR@1, HR@3, HR@5, their
 * average (×100, as the paper and REFERENCE.md print it) and NDCG@10. Systems: popularity, item-CF
 * co-occurrence with the recent items, the collaborative embeddings, the baseline ranker and STAR (the model
 * directory given, scored through the serving path: render, tokenize, onnxruntime). Equal scores keep the
 * case's (seeded random) candidate order. The scoring and the metrics are `src/eval/lists.ts`, the same code
 * `starstream eval` runs; this script scores a case file that already exists (`starstream eval` builds its
 * own cases during its replay, with scenario slices and the streaming protocol beside).
 *
 * `node --import tsx bench/star-quality.ts <cases.jsonl> [modelDir[,modelDir…]] [outDir]` writes `star-quality.md`,
 * `star-quality.json` and `star-quality.svg` to `outDir` (default `bench/results`).
 */

/** One system's row: HR@1/3/5, their average (×100) and NDCG@10 over the test cases. */
export type QualityRow = { readonly system: string } & PaperMetrics;

export interface QualityOptions {
  /** STAR model directories, each reported as its own row. */
  readonly modelDirs?: readonly string[];
  readonly split?: 'train' | 'test';
  /** Lists per `score()` call for STAR. @default 64 */
  readonly batchLists?: number;
}

export async function starQuality(casesFile: string, options: QualityOptions = {}): Promise<QualityRow[]> {
  const split = options.split ?? 'test';
  const records: LabelledCase[] = [];
  const lines = createInterface({ input: createReadStream(casesFile, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const json = JSON.parse(line) as { split: string; itemId: string; case: unknown };
    if (json.split !== split) continue;
    records.push({ itemId: json.itemId, case: parseScoringCase(json.case) });
  }
  const systems: { name: string; scorer: Scorer }[] = [
    { name: 'popularity', scorer: popularityScorer() },
    { name: 'item-cf co-occurrence', scorer: cooccurrenceScorer() },
    { name: 'embeddings', scorer: embeddingScorer() },
    { name: 'baseline ranker', scorer: createBaselineScorer() },
  ];
  for (const dir of options.modelDirs ?? []) {
    const scorer = await loadStarScorer(dir);
    systems.push({ name: `STAR (${scorer.modelVersion})`, scorer });
  }
  const rows: QualityRow[] = [];
  for (const { name, scorer } of systems) {
    const ranks = await rankCases(scorer, records, Number.POSITIVE_INFINITY, options.batchLists ?? 64);
    await scorer.close();
    rows.push({ system: name, ...paperMetrics(ranks) });
  }
  return rows;
}

export function qualityTable(rows: readonly QualityRow[]): string {
  const head = '| system | cases | HR@1 | HR@3 | HR@5 | avg HR ×100 | NDCG@10 |\n|---|---|---|---|---|---|---|\n';
  return (
    head +
    rows
      .map((r) => `| ${r.system} | ${r.cases} | ${r.hr1.toFixed(3)} | ${r.hr3.toFixed(3)} | ${r.hr5.toFixed(3)} | ${r.avg.toFixed(1)} | ${r.ndcg10.toFixed(3)} |`)
      .join('\n') +
    '\n'
  );
}

/** A grouped bar chart (HR@1, HR@3, HR@5, NDCG@10, avg HR per system) as a self-contained SVG. */
export function qualitySvg(rows: readonly QualityRow[], title: string, references: readonly { label: string; avg: number }[] = []): string {
  return barChartSvg({
    title,
    metrics: ['HR@1', 'HR@3', 'HR@5', 'NDCG@10', 'avg HR'],
    series: rows.map((r) => ({ name: `${r.system} (avg ${r.avg.toFixed(1)})`, values: [r.hr1, r.hr3, r.hr5, r.ndcg10, r.avg / 100] })),
    references: references.map((ref) => ({ metric: 4, value: ref.avg / 100, label: ref.label })),
  }).trimEnd();
}

async function main(): Promise<void> {
  const [casesFile, modelDir, outDir = join(process.cwd(), 'bench', 'results')] = process.argv.slice(2);
  if (!casesFile) {
    process.stderr.write('usage: star-quality.ts <cases.jsonl> [modelDir[,modelDir…]] [outDir]\n');
    process.exit(2);
  }
  const rows = await starQuality(casesFile, { modelDirs: modelDir ? modelDir.split(',').filter(Boolean) : [] });
  const table = qualityTable(rows);
  process.stdout.write(table);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'star-quality.md'), table);
  await writeFile(join(outDir, 'star-quality.json'), `${JSON.stringify(rows, null, 2)}\n`);
  const refs = [
    { label: 'reference co-occurrence 71.7', avg: 71.7 },
    { label: 'target 80', avg: 80 },
  ];
  await writeFile(join(outDir, 'star-quality.svg'), qualitySvg(rows, 'ml-100k, 20-candidate protocol, last 20% of time', refs));
}

runAsScript(import.meta.url, main);
