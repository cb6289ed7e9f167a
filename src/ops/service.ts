import type { Config } from '../config/schema.ts';
import { BadInputError, errorCode, errorMessage } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import type { Pipeline } from '../main.ts';
import { rankNow, type RankedNow } from '../pipeline/recommend.ts';
import { StoreView } from '../stages/state/store-view.ts';
import type { Scorer } from '../star/port.ts';
import type { BatchReader } from '../store/port.ts';
import { createEventIngest } from './api/events.ts';
import { createApi } from './api/routes.ts';
import { startOpsServer, type OpsServer, type Readiness } from './server.ts';

/**
 * The ops server of a running pipeline: `/metrics`, `/healthz`, `/readyz` and the `/v1/` API, wired to the
 * pipeline that `buildPipeline` made (`POST /v1/events` produces into its event log: on the embedded log its
 * own runner reads them). `starstream run`, `demo` and `replay` use it, and so do the API and Prometheus tests.
 */

/** Upper bound of `k` on the API: the schema's bound of `ranking.topK`. */
export const API_MAX_K = 1_000;

export interface PipelineOpsServer extends OpsServer {
  /** True while the admin API holds consumption paused. */
  readonly paused: boolean;
}

export async function startPipelineOpsServer(config: Config, pipeline: Pipeline, logger: Logger): Promise<PipelineOpsServer> {
  const { runner, metrics } = pipeline;
  const recommend = streamTimeRecommender(config, pipeline);
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
      recommend,
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
      ingestEvents: createEventIngest({
        log: pipeline.log,
        topics: pipeline.topics,
        codecs: pipeline.engine.codecs,
        framing: pipeline.framing,
        limits: () => ({ nowMs: Date.now(), maxEventAgeMs: config.pipeline.maxEventAgeMs, maxFutureSkewMs: config.pipeline.maxFutureSkewMs }),
        deadLetterMaxBytes: config.eventLog.topics.deadLetterMaxBytes,
        onDeadLetter: (code) => metrics.deadLettered(code),
      }),
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
 * The latest event time the pipeline has ranked. The processor tells every ranked event (`onRanked`); events
 * it learns without ranking (learn-only mode, rate-limited users) do not move it; `streamTimeMs` makes up for
 * that in part from the state (the user's own latest event; the popular items' latest sightings while the clock
 * has seen nothing). An exact stream time wants the pipeline or the store to keep the latest event time it
 * learned.
 */
export class StreamClock {
  private latest = Number.NEGATIVE_INFINITY;

  observe(atMs: number): void {
    if (atMs > this.latest) this.latest = atMs;
  }

  /** null before the first event. */
  get latestMs(): number | null {
    return Number.isFinite(this.latest) ? this.latest : null;
  }
}

/** How many of the most popular items are read for the stream's time when the clock has seen no event. */
export const STREAM_TIME_PROBE_ITEMS = 50;

/**
 * The stream's time as far as the state shows it: the latest of the clock, the user's own latest event and
 * (when the clock has seen nothing, e.g. right after a restart or in learn-only mode) the latest sighting of
 * the most popular items, which the latest events touch. Never the wall clock: after a replay of old data the
 * wall clock is months past every event, and every decayed count read there is 0. 0 for a store that has
 * seen no event, where there is nothing to decay.
 */
export async function streamTimeMs(view: BatchReader, clock: StreamClock, userId: string): Promise<number> {
  const user = (await view.usersById([userId])).get(userId);
  let latest = Math.max(clock.latestMs ?? Number.NEGATIVE_INFINITY, user && user.interactionCount > 0 ? user.lastSeenMs : Number.NEGATIVE_INFINITY);
  if (clock.latestMs === null) {
    // Popularity ranks the same at any read time (see store/popularity.ts), so the time passed here is moot.
    const popular = await view.popularItems(STREAM_TIME_PROBE_ITEMS, 0);
    const items = await view.itemsById(popular.map((p) => p.id));
    for (const item of items.values()) if (item.firstSeenMs <= item.lastSeenMs) latest = Math.max(latest, item.lastSeenMs);
  }
  return Number.isFinite(latest) ? latest : 0;
}

/**
 * The time evidence is computed as of: `atMs` when the caller asks for one, else the stream's time. A time
 * before the stream's is refused: the state already holds later events, which would weigh more than one
 * interaction each in the decayed counts, and evidence must never show the future of its time.
 */
export function evidenceTimeMs(streamMs: number, atMs?: number): number {
  if (atMs === undefined) return streamMs;
  if (!Number.isSafeInteger(atMs)) throw new BadInputError('INVALID_AT', `at must be epoch milliseconds, got ${String(atMs)}`);
  if (atMs < streamMs) {
    throw new BadInputError('AT_BEFORE_STREAM_TIME', `at ${atMs} is before the stream's time ${streamMs}: the state already holds later events`);
  }
  return atMs;
}

/**
 * The API's ranking: through the stream's stages, with evidence as of the stream's time (or a later `atMs`
 * the caller passes). The clock listens to the processor's ranked events, calling the listener it replaces.
 */
export function streamTimeRecommender(
  config: Config,
  pipeline: Pick<Pipeline, 'engine' | 'processor' | 'scorers' | 'experiment'>,
  clock: StreamClock = new StreamClock(),
): (userId: string, k: number, atMs?: number, arm?: string) => Promise<RankedNow & { readonly arm: string | null }> {
  const { engine, processor } = pipeline;
  const previous = processor.onRanked;
  processor.onRanked = (ranked) => {
    clock.observe(ranked.event.timestampMs);
    previous?.(ranked);
  };
  return async (userId, k, atMs, arm) => {
    const scorer = apiScorer(pipeline, userId, arm);
    const view = new StoreView(engine.store, engine.mergeItem);
    const nowMs = evidenceTimeMs(await streamTimeMs(view, clock, userId), atMs);
    const ranked = await rankNow(view, { userId, k, nowMs }, {
      scorer,
      templates: engine.templates,
      options: engine.caseOptions,
      dimension: config.store.dimension,
      consumedFilterBytes: config.store.consumedFilterBytes,
    });
    return { ...ranked, arm: scorer.arm ?? null };
  };
}

/**
 * The API's scorer for `userId`: in an experiment, the user's arm's by the stream's assignment (or `arm`, the
 * admin override, counted in no cell); else the serving model.
 */
function apiScorer(pipeline: Pick<Pipeline, 'scorers' | 'experiment'>, userId: string, arm: string | undefined): Scorer {
  const router = pipeline.experiment?.router;
  if (arm === undefined) return router ? router.scorerFor(userId) : pipeline.scorers.current();
  if (!router) throw new BadInputError('NO_EXPERIMENT', 'arm given, but no experiment runs (experiment in the config)');
  if (!router.hasArm(arm)) throw new BadInputError('UNKNOWN_ARM', `experiment ${router.experiment.name} has no arm ${arm}`);
  return router.scorerForArm(arm);
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
