import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CaseRecord } from '../src/cli/cases.ts';
import { hitAt, ndcgAt } from '../src/eval/metrics.ts';
import { cooccurrenceScorer, embeddingScorer, popularityScorer } from '../src/eval/systems.ts';
import { loadCstTemplates } from '../src/stages/evidence/templates.ts';
import { topByScore } from '../src/stages/ranking/index.ts';
import { createBaselineScorer } from '../src/star/baseline/scorer.ts';
import type { Scorer } from '../src/star/port.ts';
import { parseScoringCase } from '../src/star/prompt/case-schema.ts';
import { loadPromptSpec } from '../src/star/prompt/spec.ts';
import { loadVerifiedModel } from '../src/star/registry/registry.ts';
import { runAsScript } from './report.ts';

/**
 * Quality on the paper's protocol: every test case of a case file (`starstream cases export`) is a list of
 * the true next item and sampled negatives; each system ranks the list, and we report HR@1, HR@3, HR@5, their
 * average (×100, as the paper and REFERENCE.md print it) and NDCG@10. Systems: popularity, item-CF
 * co-occurrence with the recent items, the collaborative embeddings, the baseline ranker and STAR (the model
 * directory given, scored through the serving path: render, tokenize, onnxruntime). Equal scores keep the
 * case's (seeded random) candidate order.
 *
 * `node --import tsx bench/star-quality.ts <cases.jsonl> [modelDir[,modelDir…]] [outDir]` writes `star-quality.md`,
 * `star-quality.json` and `star-quality.svg` to `outDir` (default `bench/results`).
 */

export interface QualityRow {
  readonly system: string;
  readonly cases: number;
  readonly hr1: number;
  readonly hr3: number;
  readonly hr5: number;
  /** (HR@1 + HR@3 + HR@5) / 3 × 100. */
  readonly avg: number;
  readonly ndcg10: number;
}

export interface QualityOptions {
  /** STAR model directories, each reported as its own row. */
  readonly modelDirs?: readonly string[];
  readonly split?: 'train' | 'test';
  /** Lists per `score()` call for STAR. @default 64 */
  readonly batchLists?: number;
}

export async function starQuality(casesFile: string, options: QualityOptions = {}): Promise<QualityRow[]> {
  const split = options.split ?? 'test';
  const records: CaseRecord[] = [];
  const lines = createInterface({ input: createReadStream(casesFile, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const json = JSON.parse(line) as { split: string; label: number; itemId: string; case: unknown };
    if (json.split !== split) continue;
    records.push({ split, label: json.label, itemId: json.itemId, case: parseScoringCase(json.case) });
  }
  const systems: { name: string; scorer: Scorer }[] = [
    { name: 'popularity', scorer: popularityScorer() },
    { name: 'item-cf co-occurrence', scorer: cooccurrenceScorer() },
    { name: 'embeddings', scorer: embeddingScorer() },
    { name: 'baseline ranker', scorer: createBaselineScorer() },
  ];
  for (const dir of options.modelDirs ?? []) {
    const { scorer } = await loadVerifiedModel(dir, {
      spec: loadPromptSpec(),
      cstTemplateVersion: loadCstTemplates().version,
      parityTolerance: 1e-3,
    });
    systems.push({ name: `STAR (${scorer.modelVersion})`, scorer });
  }
  const rows: QualityRow[] = [];
  const batch = options.batchLists ?? 64;
  for (const { name, scorer } of systems) {
    const sums = { hr1: 0, hr3: 0, hr5: 0, ndcg10: 0 };
    for (let at = 0; at < records.length; at += batch) {
      const chunk = records.slice(at, at + batch);
      const scores = await scorer.score(chunk.map((r) => r.case));
      chunk.forEach((r, i) => {
        const ranked = topByScore(r.case.candidates, scores[i]!, r.case.candidates.length);
        const rank = ranked.findIndex((x) => x.evidence.itemId === r.itemId);
        sums.hr1 += hitAt(rank, 1);
        sums.hr3 += hitAt(rank, 3);
        sums.hr5 += hitAt(rank, 5);
        sums.ndcg10 += ndcgAt(rank, 10);
      });
    }
    await scorer.close();
    const n = Math.max(1, records.length);
    const row = { hr1: sums.hr1 / n, hr3: sums.hr3 / n, hr5: sums.hr5 / n, ndcg10: sums.ndcg10 / n };
    rows.push({ system: name, cases: records.length, ...row, avg: ((row.hr1 + row.hr3 + row.hr5) / 3) * 100 });
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

/** A grouped bar chart (HR@1, HR@3, HR@5, NDCG@10 per system) as a self-contained SVG. */
export function qualitySvg(rows: readonly QualityRow[], title: string, references: readonly { label: string; avg: number }[] = []): string {
  const metrics = [
    ['HR@1', (r: QualityRow) => r.hr1],
    ['HR@3', (r: QualityRow) => r.hr3],
    ['HR@5', (r: QualityRow) => r.hr5],
    ['NDCG@10', (r: QualityRow) => r.ndcg10],
    ['avg HR', (r: QualityRow) => r.avg / 100],
  ] as const;
  const colors = ['#9e9e9e', '#8d6e63', '#64b5f6', '#1565c0', '#e65100', '#2e7d32'];
  const W = 860;
  const H = 420;
  const left = 60;
  const top = 50;
  const plotH = 280;
  const groupW = (W - left - 20) / metrics.length;
  const barW = Math.min(26, (groupW - 16) / rows.length);
  const y = (v: number): number => top + plotH * (1 - v);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  ];
  for (let g = 0; g <= 10; g += 2) {
    const v = g / 10;
    parts.push(`<line x1="${left}" x2="${W - 20}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
    parts.push(`<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  metrics.forEach(([label, value], m) => {
    const x0 = left + m * groupW + (groupW - barW * rows.length) / 2;
    rows.forEach((r, i) => {
      const v = value(r);
      parts.push(`<rect x="${x0 + i * barW}" y="${y(v)}" width="${barW - 2}" height="${plotH * v}" fill="${colors[i % colors.length]}"/>`);
    });
    parts.push(`<text x="${left + m * groupW + groupW / 2}" y="${top + plotH + 18}" text-anchor="middle">${label}</text>`);
  });
  for (const ref of references) {
    const x0 = left + (metrics.length - 1) * groupW;
    parts.push(`<line x1="${x0}" x2="${x0 + groupW}" y1="${y(ref.avg / 100)}" y2="${y(ref.avg / 100)}" stroke="#c62828" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${x0 + groupW - 2}" y="${y(ref.avg / 100) - 3}" text-anchor="end" fill="#c62828" font-size="10">${escapeXml(ref.label)}</text>`);
  }
  rows.forEach((r, i) => {
    const lx = left + (i % 3) * 260;
    const ly = top + plotH + 40 + Math.floor(i / 3) * 18;
    parts.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${colors[i % colors.length]}"/>`);
    parts.push(`<text x="${lx + 18}" y="${ly}">${escapeXml(`${r.system} (avg ${r.avg.toFixed(1)})`)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
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
