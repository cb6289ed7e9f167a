import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import { FatalError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { buildLabeller, buildTeacherWorker, type Pipeline } from '../main.ts';
import type { Manifest } from '../teacher/dataset/writer.ts';
import type { LanguageModel } from '../teacher/llm/port.ts';

/**
 * The side stream beside an in-process pipeline (`demo --teacher`, `replay --teacher` on the embedded
 * default): the MARS teacher on the pipeline's own log and store, and the labeller exporting the data set.
 * After the stream ends, `finish()` waits for the teacher to answer every sampled case, expires what no
 * later interaction can label (the replay is over), and closes the data set.
 */

export interface SideStreamSummary {
  readonly casesSampled: number;
  readonly trajectories: number;
  /** Cases no outcome could label exactly (see the outcome join), so not in the data set. */
  readonly unlabelled: number;
  readonly dataset: string;
  readonly manifest: Manifest;
  readonly backend: string;
  readonly model: string;
}

export interface SideStream {
  finish(): Promise<SideStreamSummary>;
  /** Stops everything without waiting for the teacher (errors, interrupts). */
  abort(): Promise<void>;
}

export async function startSideStream(
  config: Config,
  logger: Logger,
  pipeline: Pipeline,
  options: { readonly registry: Registry; readonly model?: LanguageModel; readonly drainTimeoutMs: number },
): Promise<SideStream> {
  if (!config.sampling.enabled) {
    throw new FatalError('CONFIG_SIDE_STREAM', 'the teacher needs sampling.enabled = true (STARSTREAM_SAMPLING__ENABLED=true)');
  }
  const teacher = await buildTeacherWorker(config, {
    logger,
    log: pipeline.log,
    store: pipeline.engine.store,
    registry: options.registry,
    processMetrics: false,
    ...(options.model ? { model: options.model } : {}),
  });
  const labelling = await buildLabeller(config, { logger, log: pipeline.log, metrics: teacher.metrics });
  const teaching = teacher.worker.run();
  labelling.labeller.start();
  const { labeller } = labelling;
  const stopAll = async (): Promise<void> => {
    await teacher.worker.stop();
    await labelling.close();
    await teacher.close();
    await teaching;
  };

  return {
    abort: stopAll,
    finish: async () => {
      const sampled = (): number => pipeline.processor.casesSampled;
      const deadline = Date.now() + options.drainTimeoutMs;
      let last = -1;
      // Every sampled case read by the join and answered by the teacher (one trajectory per case).
      while (labeller.outcomes.casesRead < sampled() || labeller.trajectoriesRead < sampled()) {
        if (Date.now() > deadline) {
          logger.warn({ sampled: sampled(), trajectories: labeller.trajectoriesRead }, 'teacher did not answer every case in time; the rest stay pending');
          break;
        }
        if (labeller.trajectoriesRead !== last) {
          last = labeller.trajectoriesRead;
          process.stderr.write(`teacher: ${last}/${sampled()} cases answered\n`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      await labeller.expireAll();
      while (labeller.pairing.pending.trajectories + labeller.pairing.pending.outcomes > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const trajectories = labeller.trajectoriesRead;
      await stopAll();
      return {
        casesSampled: sampled(),
        trajectories,
        unlabelled: labeller.dropped,
        dataset: config.sampling.dataset.dir,
        manifest: labeller.writer.current,
        backend: teacher.model.backend,
        model: teacher.model.model,
      };
    },
  };
}
