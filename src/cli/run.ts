import { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import { errorMessage } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { buildPipeline } from '../main.ts';
import { startPipelineOpsServer } from '../ops/service.ts';
import { refreshGauges } from './gauges.ts';

const GAUGE_REFRESH_MS = 5_000;

/** On the embedded event log, how long `run` waits for a first record before it explains why none may come. */
export const EMBEDDED_IDLE_HINT_MS = 15_000;

/**
 * `starstream run`: the pipeline on the configured event log and store until SIGTERM or SIGINT, then a
 * graceful shutdown within `shutdownDeadlineMs` (exit 0), or exit 1 if the deadline passes or a consumer
 * fails fatally. The caller exits the process with the code: past the deadline, work may still be pending.
 */
export async function run(config: Config, logger: Logger): Promise<number> {
  const registry = new Registry();
  const pipeline = await buildPipeline(config, { logger, registry, fromBeginning: true });
  const { runner, engine } = pipeline;
  // /metrics, /healthz, /readyz (false from SIGTERM on: the runner drains) and the /v1/ API.
  const server = await startPipelineOpsServer(config, pipeline, logger);
  logger.info({ url: server.url, eventLog: config.eventLog.kind, store: config.store.kind }, 'starstream running');
  await runner.start();
  // The refresh in flight is awaited before closing, so a lag query never races the admin client's shutdown.
  const gauges = refreshGauges(pipeline, GAUGE_REFRESH_MS);
  const idleHint = config.eventLog.kind === 'embedded' ? setTimeout(() => hintWhenIdle(runner.processedRecords, server.url, config.ops.apiToken !== undefined), EMBEDDED_IDLE_HINT_MS) : null;
  idleHint?.unref();

  let deadlinePassed = false;
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: string): void => {
      void gauges.stop();
      logger.info({ signal, deadlineMs: config.shutdownDeadlineMs }, 'shutting down');
      const deadline = setTimeout(() => {
        logger.error({ deadlineMs: config.shutdownDeadlineMs }, 'shutdown deadline passed');
        deadlinePassed = true;
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
    (err: unknown) => {
      logger.error({ err: errorMessage(err) }, 'consumer failed');
      return 1;
    },
  );
  let code = (await Promise.race([stopped, failed.then((c) => c ?? stopped)])) ?? 0;
  if (idleHint) clearTimeout(idleHint);
  const gaugesStopped = gauges.stop();
  // Past the deadline the batch in flight is abandoned uncommitted (it is redelivered); closing would wait on it.
  if (deadlinePassed) return 1;
  await gaugesStopped;
  code = await closeAll(logger, code, [
    ['runner', () => runner.stop()],
    ['scorers', () => pipeline.scorers.close()],
    ['event log', () => pipeline.log.close()],
    // The runner's stop wrote the state once (the last checkpoint, or the store's flush); closing releases the
    // store without writing it again (a checkpointer owns the embedded snapshot file).
    ['store', () => engine.store.close()],
    ['ops server', () => server.close()],
  ]);
  logger.info({ code, processed: runner.processedRecords }, 'stopped');
  return code;
}

/**
 * The embedded event log lives in this process, so no producer outside it can write to it: only
 * `POST /v1/events` can. A `run` on the default config that nobody posts to waits for records that never come.
 * Said once, on stderr, when nothing arrived.
 */
function hintWhenIdle(processed: number, url: string, hasToken: boolean): void {
  if (processed > 0) return;
  process.stderr.write(
    `starstream run: no events in ${EMBEDDED_IDLE_HINT_MS / 1000} s. The embedded event log lives in this process, so only its API writes to it: ` +
      `POST events to ${url}/v1/events${hasToken ? '' : ' (set ops.apiToken, STARSTREAM_OPS__API_TOKEN, first)'}, ` +
      'or use `starstream demo --serve` or `starstream replay SOURCE --serve` to run a stream in-process and keep the API up, ' +
      'or set STARSTREAM_EVENT_LOG__KIND=kafka and produce to the interactions topic\n',
  );
}

/** Closes in the given order; a failing step is logged and turns the exit code to 1, the rest still close. */
async function closeAll(
  logger: Logger,
  code: number,
  steps: ReadonlyArray<readonly [string, () => Promise<unknown>]>,
): Promise<number> {
  let result = code;
  for (const [what, close] of steps) {
    try {
      await close();
    } catch (err) {
      logger.error({ err: errorMessage(err), what }, 'close failed');
      result = 1;
    }
  }
  return result;
}
