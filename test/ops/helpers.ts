import { Registry } from 'prom-client';
import { produceInteractions, produceItems, NO_MALFORMED, type MalformedMix } from '../../src/cli/produce.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config, ConfigInput } from '../../src/config/schema.ts';
import { generateCatalogue, generateStream } from '../../src/data/synthetic.ts';
import { silentLogger, type Logger } from '../../src/logging/logger.ts';
import { buildPipeline, type Pipeline } from '../../src/main.ts';
import { startPipelineOpsServer, type PipelineOpsServer } from '../../src/ops/service.ts';

/** A small synthetic world: enough users and items for candidates, evidence and hits, fast on 2 cores. */
export const WORLD = { users: 60, items: 200, events: 600, seed: 11 } as const;

export interface TestPipeline {
  readonly config: Config;
  readonly pipeline: Pipeline;
  readonly server: PipelineOpsServer;
  readonly registry: Registry;
  /** Produces `events` more generated interactions and resolves when the pipeline has processed them all. */
  feed(events: number, malformed?: MalformedMix): Promise<void>;
  close(): Promise<void>;
}

/**
 * The embedded default as `starstream run` wires it (buildPipeline + the ops server on a free port), started,
 * with the synthetic catalogue produced into the items topic.
 */
export async function startTestPipeline(overrides: ConfigInput = {}, logger: Logger = silentLogger()): Promise<TestPipeline> {
  const config = loadConfig({
    overrides: {
      ...overrides,
      store: { dimension: 16, ...overrides.store },
      ops: { host: '127.0.0.1', port: 0, ...overrides.ops },
      logLevel: 'silent',
    },
  });
  const registry = new Registry();
  const pipeline = await buildPipeline(config, { logger, registry });
  const server = await startPipelineOpsServer(config, pipeline, logger);
  const { log, topics, engine, framing, runner } = pipeline;
  await runner.start();
  await produceItems(log, topics.items, generateCatalogue(WORLD), engine.codecs, framing);
  let produced = 0;
  let feeds = 0;
  let startMs = Date.now() - 2 * 86_400_000;
  return {
    config,
    pipeline,
    server,
    registry,
    async feed(events, malformed = NO_MALFORMED) {
      // Each feed is a new stretch of time with its own seed, so event ids never repeat.
      const stream = generateStream({ ...WORLD, events, seed: WORLD.seed + feeds++, startMs, durationMs: 3_600_000 });
      startMs += 3_600_000;
      produced += await produceInteractions(log, topics.interactions, stream, engine.codecs, framing, malformed);
      // A guard against a stuck pipeline, not a speed requirement: generous for a loaded machine.
      const deadline = Date.now() + 300_000;
      while (runner.processedRecords < produced) {
        if (Date.now() > deadline) throw new Error(`pipeline processed ${runner.processedRecords} of ${produced} records in 300 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await runner.stop();
      await pipeline.scorers.close();
      await log.close();
      await engine.store.close();
      await server.close();
    },
  };
}
