import type { Config } from '../config/schema.ts';
import { errorCode, errorMessage } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import type { Pipeline } from '../main.ts';
import { rankNow } from '../pipeline/recommend.ts';
import { StoreView } from '../stages/state/store-view.ts';
import { createApi } from './api/routes.ts';
import { startOpsServer, type OpsServer, type Readiness } from './server.ts';

/**
 * The ops server of a running pipeline: `/metrics`, `/healthz`, `/readyz` and the `/v1/` API, wired to the
 * pipeline that `buildPipeline` made. `starstream run` uses it, and so do the API and Prometheus tests.
 */

/** Upper bound of `k` on the API: the schema's bound of `ranking.topK`. */
export const API_MAX_K = 1_000;

export interface PipelineOpsServer extends OpsServer {
  /** True while the admin API holds consumption paused. */
  readonly paused: boolean;
}

export async function startPipelineOpsServer(config: Config, pipeline: Pipeline, logger: Logger): Promise<PipelineOpsServer> {
  const { engine, runner, metrics } = pipeline;
  let paused = false;
  const server = await startOpsServer({
    host: config.ops.host,
    port: config.ops.port,
    registry: metrics.registry,
    readiness: pipelineReadiness(pipeline, logger),
  });
  server.route(
    '/v1/',
    createApi({
      recommend: (userId, k) =>
        rankNow(
          new StoreView(engine.store, engine.mergeItem),
          { userId, k, nowMs: Date.now() },
          {
            scorer: pipeline.scorers.current(),
            templates: engine.templates,
            options: engine.caseOptions,
            dimension: config.store.dimension,
            consumedFilterBytes: config.store.consumedFilterBytes,
          },
        ),
      defaultK: config.ranking.topK,
      maxK: API_MAX_K,
      token: config.ops.apiToken,
      reloadModel: pipeline.reloadModel,
      pause: () => {
        runner.pause();
        paused = true;
        metrics.setPaused(true);
      },
      resume: () => {
        runner.resume();
        paused = false;
        metrics.setPaused(false);
      },
      isPaused: () => paused,
      logger,
      onRequest: (route, method, status, seconds) => metrics.apiRequest(route, method, status, seconds),
    }),
  );
  return {
    get url() {
      return server.url;
    },
    get paused() {
      return paused;
    },
    route: (prefix, handler) => server.route(prefix, handler),
    close: () => server.close(),
  };
}

/**
 * Ready = consuming (`PipelineRunner.health`: false before start, while draining, after stop, while a consumer
 * has failed, crashed or gets no answer to its fetches, and while a batch is stuck past `pipeline.stuckBatchMs`),
 * the store answers, a model serves. A pause by the admin API keeps the instance ready: it still serves the
 * API, and it was asked to stop fetching.
 */
export function pipelineReadiness(pipeline: Pipeline, logger: Logger): Readiness {
  // Probes ask every few seconds: the log says when the answer changes, not on every probe.
  let wasReady = true;
  return async () => {
    const health = pipeline.runner.health();
    const reasons = [...health.reasons];
    const store = await pipeline.engine.store.counts().then(
      () => true,
      (err: unknown) => {
        logger.warn({ code: errorCode(err), err: errorMessage(err) }, 'readiness: the store does not answer');
        reasons.push(`store does not answer (${errorCode(err)})`);
        return false;
      },
    );
    const model = pipeline.scorers.version.length > 0;
    if (!model) reasons.push('no model serves');
    const ready = health.ready && store && model;
    if (ready !== wasReady) {
      if (ready) logger.info('readiness: ready again');
      else logger.warn({ reasons }, 'readiness: not ready');
      wasReady = ready;
    }
    return { ready, checks: { consuming: health.ready, store, model }, reasons };
  };
}
