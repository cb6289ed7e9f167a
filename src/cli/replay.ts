import type { Config } from '../config/schema.ts';
import type { Interaction } from '../domain/events.ts';
import { resolveDataset } from '../data/datasets.ts';
import { readInteractionsJsonl } from '../data/jsonl.ts';
import { createFraming } from '../eventlog/codec/framing.ts';
import { createCodecs } from '../eventlog/codec/avro.ts';
import { createEventLog } from '../eventlog/create.ts';
import { topicNames } from '../eventlog/topics.ts';
import { FatalError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { runInProcess, type StreamInput } from './demo.ts';
import { NO_MALFORMED, produceInteractions, produceItems } from './produce.ts';
import { printDemoSummary } from './report.ts';

/**
 * `starstream replay <source>`: a data set (ml-100k, lastfm, a directory) or a JSON-lines file of
 * interactions, in time order. On Kafka it is produced into the input topics for running pipelines; on the
 * embedded default it runs through the pipeline in this process and ends with the demo's summary.
 * Malformed JSON lines are reported and skipped (they never reach the log).
 */
export async function replay(config: Config, logger: Logger, source: string, teacher?: StreamInput['teacher']): Promise<number> {
  const { items, events, total } = await loadSource(source, logger);
  if (config.eventLog.kind === 'embedded') {
    const out = `out/replay-${source.replace(/[^\w.-]+/g, '_')}.jsonl`;
    const summary = await runInProcess(config, logger, { items, events, total, malformed: NO_MALFORMED, out, ...(teacher ? { teacher } : {}) });
    printDemoSummary(summary, out);
    return 0;
  }
  if (teacher) {
    throw new FatalError('CONFIG_SIDE_STREAM', 'replay --teacher runs in-process on the embedded event log; on Kafka run `starstream teacher --label` beside the pipeline');
  }
  const log = createEventLog(config, logger);
  const topics = topicNames(config);
  const codecs = createCodecs();
  const framing = createFraming(config.eventLog);
  try {
    await produceItems(log, topics.items, items, codecs, framing);
    const sent = await produceInteractions(log, topics.interactions, events, codecs, framing, NO_MALFORMED);
    logger.info({ topic: topics.interactions, sent, items: items.length }, 'replayed');
    return 0;
  } finally {
    await log.close();
  }
}

async function loadSource(source: string, logger: Logger) {
  if (source.endsWith('.jsonl')) {
    const events: Interaction[] = [];
    for await (const entry of readInteractionsJsonl(source)) {
      if (entry.kind === 'interaction') events.push(entry.interaction);
      else logger.warn({ line: entry.line, error: entry.error }, 'malformed line skipped');
    }
    return { items: [], events, total: events.length };
  }
  const dataset = await resolveDataset(source);
  return { items: dataset.items, events: dataset.interactions, total: dataset.interactions.length };
}
