import { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import { errorMessage } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { buildLabeller, buildTeacherWorker, type LabellerProcess } from '../main.ts';
import { startOpsServer } from '../ops/server.ts';

/**
 * `starstream teacher`: the MARS teacher worker. Consumes the teacher-cases topic, runs planner → analysts →
 * reflector → ranker on each case with the `teacher.llm` model and the `teacher.limits`, and produces one
 * trajectory per case to the trajectories topic, until SIGTERM/SIGINT. Serves /metrics and /healthz on
 * `ops.port` (the teacher's own metrics group). Exit 0 after a graceful stop, 1 on a fatal error (e.g. the
 * LLM endpoint refuses the credentials) or when the shutdown deadline passes.
 *
 * With `label` (`starstream teacher --label`) the process also runs the labeller: the outcome join, the
 * pairing with trajectories and the dataset export under `sampling.dataset.dir`. Its journals are local
 * files, so exactly one process per data directory may run it; scale the teacher itself with more
 * instances without `--label`.
 *
 * The store is the configured one: Qdrant in production. With the embedded store the teacher needs the
 * pipeline's process (the index lives there); run it through the composition root in the same process.
 */
export async function teacher(config: Config, logger: Logger, options: { readonly label?: boolean } = {}): Promise<number> {
  if (config.store.kind === 'embedded') {
    logger.warn('store.kind = embedded: this teacher reads its own copy of the store (store.embedded.path), not the live pipeline\'s');
  }
  const registry = new Registry();
  const proc = await buildTeacherWorker(config, { logger, registry, fromBeginning: true });
  const labelling: LabellerProcess | null = options.label ? await buildLabeller(config, { logger, metrics: proc.metrics }) : null;
  let running = true;
  const server = await startOpsServer({
    host: config.ops.host,
    port: config.ops.port,
    registry,
    readiness: () => Promise.resolve({ ready: running, checks: { worker: running } }),
  });
  logger.info({ url: server.url, backend: proc.model.backend, model: proc.model.model, topic: proc.topics.teacherCases }, 'teacher running');

  labelling?.labeller.start();
  const done = Promise.all([proc.worker.run(), labelling?.labeller.done()]).then(
    () => 0,
    (err: unknown) => {
      logger.fatal({ err: errorMessage(err) }, 'teacher worker failed');
      return 1;
    },
  );
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const first = await Promise.race([done.then((code) => ({ code })), signalled.then((signal) => ({ signal }))]);
  running = false;
  let code = 'code' in first ? first.code : 0;
  if ('signal' in first) {
    logger.info({ signal: first.signal, deadlineMs: config.shutdownDeadlineMs }, 'shutting down');
    const deadline = new Promise<number>((resolve) => setTimeout(() => resolve(1), config.shutdownDeadlineMs).unref());
    code = await Promise.race([
      Promise.all([proc.worker.stop(), labelling?.labeller.stop()]).then(
        () => done,
        (err: unknown) => {
          logger.error({ err: errorMessage(err) }, 'shutdown failed');
          return 1;
        },
      ),
      deadline,
    ]);
    if (code === 1) logger.error({ deadlineMs: config.shutdownDeadlineMs }, 'teacher did not stop cleanly');
  } else {
    await proc.worker.stop();
    await labelling?.labeller.stop();
  }
  for (const [what, close] of [
    ['labeller', () => labelling?.close() ?? Promise.resolve()],
    ['teacher', () => proc.close()],
    ['ops server', () => server.close()],
  ] as const) {
    try {
      await close();
    } catch (err) {
      logger.error({ err: errorMessage(err), what }, 'close failed');
      code = 1;
    }
  }
  logger.info({ code }, 'teacher stopped');
  return code;
}
