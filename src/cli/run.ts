import { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import { errorMessage } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { buildPipeline } from '../main.ts';
import { startOpsServer } from '../ops/server.ts';

const GAUGE_REFRESH_MS = 5_000;

/**
 * `starstream run`: the pipeline on the configured event log and store until SIGTERM or SIGINT, then a
 * graceful shutdown within `shutdownDeadlineMs` (exit 0), or exit 1 if the deadline passes or a consumer
 * fails fatally.
 */
export async function run(config: Config, logger: Logger): Promise<number> {
  const registry = new Registry();
  const pipeline = await buildPipeline(config, { logger, registry, fromBeginning: true });
  const { runner, engine, metrics } = pipeline;
  const server = await startOpsServer({
    host: config.ops.host,
    port: config.ops.port,
    registry,
    readiness: async () => {
      const storeOk = await engine.store.counts().then(() => true, () => false);
      return { ready: runner.ready && storeOk, checks: { consuming: runner.ready, store: storeOk, model: true } };
    },
  });
  logger.info({ url: server.url, eventLog: config.eventLog.kind, store: config.store.kind }, 'starstream running');
  await runner.start();
  const gauges = setInterval(() => {
    void runner.lag().catch(() => undefined);
    void engine.store.counts().then((c) => metrics.setStoreSize(c.users, c.items), () => undefined);
  }, GAUGE_REFRESH_MS);

  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: string): void => {
      logger.info({ signal, deadlineMs: config.shutdownDeadlineMs }, 'shutting down');
      const deadline = setTimeout(() => {
        logger.error({ deadlineMs: config.shutdownDeadlineMs }, 'shutdown deadline passed');
        resolve(1);
      }, config.shutdownDeadlineMs);
      deadline.unref();
      runner.stop().then(
        () => resolve(0),
        (err: unknown) => {
          logger.error({ err: errorMessage(err) }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
  const failed = runner.done().then(
    () => null,
    () => 1,
  );
  const code = (await Promise.race([stopped, failed.then((c) => c ?? stopped)])) ?? 0;
  clearInterval(gauges);
  await runner.stop().catch(() => undefined);
  await pipeline.scorers.close();
  await pipeline.log.close();
  await engine.store.close();
  await server.close();
  logger.info({ code, processed: runner.processedRecords }, 'stopped');
  return code;
}
