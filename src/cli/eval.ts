import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Item } from '../domain/events.ts';
import { resolveDataset } from '../data/datasets.ts';
import { barChartSvg } from '../eval/plot.ts';
import { evaluateStreaming, type StreamingRow } from '../eval/streaming.ts';
import { cooccurrenceScorer, embeddingScorer, popularityScorer } from '../eval/systems.ts';
import type { Logger } from '../logging/logger.ts';
import { buildEngine, buildStore } from '../main.ts';
import { createBaselineScorer } from '../star/baseline/scorer.ts';
import { Progress } from './progress.ts';

/**
 * `starstream eval`: the streaming (prequential) protocol on a data set, for popularity, item-CF alone,
 * embeddings alone and the baseline ranker, side by side on the same candidates and evidence. Prints a
 * table and writes `streaming-<dataset>.json` and `.svg` under `out`.
 */
export async function evalCommand(config: Config, logger: Logger, options: { dataset: string; out: string }): Promise<number> {
  const dataset = await resolveDataset(options.dataset);
  const rows = await runStreamingEval(config, dataset.interactions, dataset.items);
  const baseline = rows.find((r) => r.system.startsWith('baseline'))!;
  const bestOther = Math.max(...rows.filter((r) => r !== baseline).map((r) => r.hitRate));
  printTable(dataset.name, rows, baseline.hitRate / bestOther - 1);
  await mkdir(options.out, { recursive: true });
  const base = join(options.out, `streaming-${dataset.name}`);
  const report = {
    protocol: 'streaming: recommend then learn, events in time order, first 20% warm-up, consumed items excluded, K=10',
    dataset: dataset.name,
    events: dataset.interactions.length,
    seed: config.embeddings.seed,
    measuredAt: new Date().toISOString(),
    rows,
    baselineLiftOverBestSingleSignal: baseline.hitRate / bestOther - 1,
  };
  await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(
    `${base}.svg`,
    barChartSvg({
      title: `Streaming protocol on ${dataset.name} (K=10)`,
      metrics: ['hit rate@10', 'NDCG@10'],
      series: rows.map((r) => ({ name: r.system, values: [r.hitRate, r.ndcg] })),
    }),
  );
  logger.info({ files: [`${base}.json`, `${base}.svg`] }, 'evaluation written');
  return 0;
}

export async function runStreamingEval(
  config: Config,
  events: Parameters<typeof evaluateStreaming>[0],
  items: readonly Item[] = [],
): Promise<StreamingRow[]> {
  const store = buildStore(config);
  await store.init();
  // The catalogue arrives on the items topic in the stream; here it is loaded up front (titles, categories).
  await store.putItemMetadata(items.map((i) => ({ itemId: i.itemId, title: i.title, categories: i.categories })));
  const engine = buildEngine(config, store);
  const progress = new Progress('events', events.length);
  try {
    return await evaluateStreaming(
      events,
      {
        ...engine,
        negativesPerEvent: config.embeddings.negatives,
        dimension: config.store.dimension,
        consumedFilterBytes: config.store.consumedFilterBytes,
      },
      [popularityScorer(), cooccurrenceScorer(), embeddingScorer(), createBaselineScorer()],
      { k: 10, warmupShare: 0.2, onProgress: (done) => progress.update(done), progressEvery: 500 },
    );
  } finally {
    progress.finish(events.length);
    await store.close();
  }
}

function printTable(dataset: string, rows: readonly StreamingRow[], lift: number): void {
  const lines = [
    `\nstreaming protocol on ${dataset} (recommend, then learn; K=10; first 20% warm-up)`,
    `  ${'system'.padEnd(14)} ${'cases'.padStart(8)} ${'hit@10'.padStart(8)} ${'NDCG@10'.padStart(8)}`,
    ...rows.map((r) => `  ${r.system.padEnd(14)} ${String(r.cases).padStart(8)} ${r.hitRate.toFixed(4).padStart(8)} ${r.ndcg.toFixed(4).padStart(8)}`),
    `  baseline vs best single signal: ${(lift * 100).toFixed(1)}%`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
