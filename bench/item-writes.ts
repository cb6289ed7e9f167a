import { loadConfig } from '../src/config/load.ts';
import { generateStream } from '../src/data/synthetic.ts';
import { NO_MALFORMED, produceInteractions } from '../src/cli/produce.ts';
import { createEmbeddedEventLog } from '../src/eventlog/embedded/log.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { buildPipeline, buildStore } from '../src/main.ts';
import type { ItemDelta, VectorStore } from '../src/store/port.ts';
import { machine, save, type Row } from './report.ts';

/**
 * `npm run bench -- item-writes`: what routed item writes (`store.itemWrites = routed`) cost against direct ones.
 *
 * One pipeline on the embedded log and the embedded store over a generated stream, the same events once per
 * mode, each on a fresh pipeline after a discarded warm-up run: first learning only (ranking off, where item
 * writes are the largest share of the work, so the relative cost is at its highest), then with ranking on
 * (candidates + evidence + baseline ranker, `rankedEvents` events). The clock runs from the first
 * event produced until every event is processed and, routed, every item delta applied: until the store holds
 * what direct mode holds when it is done. Also counted: item-deltas records and bytes per interaction (a reader
 * group beside the writer's), and the deltas the store was asked to apply (routed: after the writer's merge).
 */

export interface ItemWritesBenchOptions {
  readonly events: number;
  readonly rankedEvents: number;
  readonly users: number;
  readonly items: number;
  readonly seed: number;
}

export const DEFAULT_ITEM_WRITES_BENCH: ItemWritesBenchOptions = {
  events: 200_000,
  rankedEvents: 20_000,
  users: 50_000,
  items: 50_000,
  seed: 11,
};

interface RunResult {
  readonly seconds: number;
  readonly deltasApplied: number;
  readonly applyCalls: number;
  readonly deltaRecords: number;
  readonly deltaBytes: number;
}

async function runOnce(
  itemWrites: 'direct' | 'routed',
  options: ItemWritesBenchOptions,
  events: number,
  rankingEnabled: boolean,
): Promise<RunResult> {
  const config = loadConfig({
    overrides: { store: { itemWrites }, pipeline: { rankingEnabled }, ops: { port: 0 } },
  });
  const logger = silentLogger();
  const log = createEmbeddedEventLog(config.eventLog, logger);
  const counted = countingStore(buildStore(config));
  const pipeline = await buildPipeline(config, { logger, log, store: counted.store });
  const { runner, topics, engine, framing } = pipeline;
  let deltaRecords = 0;
  let deltaBytes = 0;
  const reader = log.consumer({
    groupId: 'bench-reader',
    topics: [topics.itemDeltas],
    fromBeginning: true,
    maxBatchRecords: 1_000,
  });
  const reading = reader.run(async (batch) => {
    deltaRecords += batch.records.length;
    for (const r of batch.records) deltaBytes += r.value.length;
  });
  await runner.start();
  const stream = generateStream({ ...options, events, durationMs: 90 * 86_400_000 });
  const started = performance.now();
  await Promise.all([
    produceInteractions(log, topics.interactions, stream, engine.codecs, framing, NO_MALFORMED),
    (async () => {
      while (runner.processedRecords < events || (await runner.itemDeltaLag()) > 0)
        await new Promise((r) => setTimeout(r, 5));
    })(),
  ]);
  const seconds = (performance.now() - started) / 1000;
  await reader.stop();
  await reading;
  await runner.stop();
  await log.close();
  await counted.store.close();
  return { seconds, deltasApplied: counted.deltas, applyCalls: counted.calls, deltaRecords, deltaBytes };
}

/** Counts what `applyItemDeltas` is asked to do. */
function countingStore(store: VectorStore): {
  store: VectorStore;
  readonly deltas: number;
  readonly calls: number;
} {
  let deltas = 0;
  let calls = 0;
  const wrapped: VectorStore = Object.create(store) as VectorStore;
  wrapped.applyItemDeltas = (batch: readonly ItemDelta[]) => {
    calls++;
    deltas += batch.length;
    return store.applyItemDeltas(batch);
  };
  return {
    store: wrapped,
    get deltas() {
      return deltas;
    },
    get calls() {
      return calls;
    },
  };
}

export async function benchItemWrites(
  options: ItemWritesBenchOptions = DEFAULT_ITEM_WRITES_BENCH,
): Promise<Row[]> {
  await runOnce('direct', options, Math.min(options.events, 20_000), false);
  const rows: Row[] = [];
  for (const [ranking, events] of [
    [false, options.events],
    [true, options.rankedEvents],
  ] as const) {
    let directRate = 0;
    for (const mode of ['direct', 'routed'] as const) {
      const r = await runOnce(mode, options, events, ranking);
      const rate = events / r.seconds;
      if (mode === 'direct') directRate = rate;
      rows.push({
        phase: ranking ? 'rank (candidates + evidence + baseline)' : 'learn (ranking off)',
        'store.itemWrites': mode,
        events,
        seconds: r.seconds,
        'events/s': rate,
        'vs direct': `${((rate / directRate) * 100).toFixed(0)}%`,
        'item-deltas records/event': r.deltaRecords / events,
        'item-deltas bytes/event': r.deltaBytes / events,
        'deltas applied/event': r.deltasApplied / events,
        'store calls': r.applyCalls,
      });
    }
  }
  save('item-writes', 'Item writes: direct vs routed (embedded log + embedded store)', rows, {
    machine: machine(),
    options,
  });
  return rows;
}
