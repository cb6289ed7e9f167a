/**
 * Throughput of the embedded event log alone: records produced in batches of 500 to a 6-partition topic and
 * consumed by one group, from the first send to the last record handed over. The pipeline needs about 20k/s;
 * the log should leave it most of the CPU, so this figure is expected well above 100k/s on an idle machine.
 * It was an assertion in test/eventlog/embedded.test.ts until a loaded CI machine made it fail: a speed is a
 * figure to report, not a property to test.
 *
 *   npm run bench -- embedded-log          (BENCH_SCALE scales the record count)
 *   node --import tsx bench/embedded-log.ts [records]
 */
import { parseConfig } from '../src/config/load.ts';
import { createEmbeddedEventLog } from '../src/eventlog/embedded/log.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { machine, runAsScript, save } from './report.ts';

export interface EmbeddedLogBenchResult {
  readonly records: number;
  readonly recordsPerSec: number;
  readonly ms: number;
}

export async function benchEmbeddedLog(records = 100_000, batch = 500): Promise<EmbeddedLogBenchResult> {
  const log = createEmbeddedEventLog(parseConfig({}).eventLog, silentLogger());
  const topic = 'bench-embedded-log';
  try {
    await log.ensureTopics([{ name: topic, partitions: 6, replicationFactor: 1 }]);
    const consumer = log.consumer({ groupId: 'bench', topics: [topic], fromBeginning: true, maxBatchRecords: batch });
    let consumed = 0;
    let allIn: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allIn = resolve));
    const running = consumer.run(async (b) => {
      consumed += b.records.length;
      if (consumed >= records) allIn();
    });
    const producer = log.producer();
    const value = Buffer.alloc(100);
    const started = performance.now();
    for (let sent = 0; sent < records; sent += batch) {
      const n = Math.min(batch, records - sent);
      await producer.send(Array.from({ length: n }, (_, j) => ({ topic, key: `user-${j}`, value })));
    }
    await done;
    const ms = performance.now() - started;
    await consumer.stop();
    await running;
    return { records, recordsPerSec: records / (ms / 1000), ms };
  } finally {
    await log.close();
  }
}

export async function runEmbeddedLogBench(scale = 1): Promise<void> {
  const result = await benchEmbeddedLog(Math.max(500, Math.round(100_000 * scale)));
  save('embedded-log', 'Embedded event log: produce → consume throughput', [{ ...result }], { machine: machine() });
}

runAsScript(import.meta.url, () => runEmbeddedLogBench(Number(process.argv[2] ?? 100_000) / 100_000));
