import { basename } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Interaction, Item } from '../domain/events.ts';
import { isDatasetName } from '../data/datasets.ts';
import { readInteractionsJsonl } from '../data/jsonl.ts';
import { createFraming } from '../eventlog/codec/framing.ts';
import { createCodecs } from '../eventlog/codec/avro.ts';
import { createEventLog } from '../eventlog/create.ts';
import { topicNames } from '../eventlog/topics.ts';
import { FatalError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { runInProcess, type StreamInput } from './demo.ts';
import { NO_MALFORMED, produceInteractions, produceItems } from './produce.ts';
import { printSummary } from './report.ts';
import { loadDatasetArg, pathKind } from './sources.ts';
import { InputError } from './usage.ts';

/**
 * `starstream replay <source>`: a data set (ml-100k, lastfm, a directory) or a JSON-lines file of
 * interactions, in time order. On Kafka it is produced into the input topics for running pipelines; on the
 * embedded default it runs through the pipeline in this process and ends with its summary.
 * Malformed JSON lines never reach the log: they are counted, the first few logged, and the count is in the
 * summary (and in the `replayed` log line on Kafka).
 */

/** Malformed lines logged one by one; past these only the count grows. */
const MALFORMED_LOGGED = 3;

export interface ReplaySource {
  readonly items: readonly Item[];
  readonly events: readonly Interaction[];
  readonly total: number;
  /** A short name for titles and the output file: the data set's name or the file's, without extension. */
  readonly name: string;
  /** Lines of a JSON-lines file that were not interactions; null for a data set directory. */
  readonly skipped: { readonly count: number; readonly first?: string } | null;
}

export async function replay(config: Config, logger: Logger, source: string, teacher?: StreamInput['teacher']): Promise<number> {
  const input = await loadSource(source, logger);
  if (config.eventLog.kind === 'embedded') {
    const out = replayOutFile(input.name);
    const summary = await runInProcess(config, logger, {
      items: input.items,
      events: input.events,
      total: input.total,
      malformed: NO_MALFORMED,
      out,
      ...(teacher ? { teacher } : {}),
    });
    printSummary(summary, {
      title: `replay ${input.name}`,
      out,
      ...(input.skipped ? { skippedLines: input.skipped } : {}),
      next: ['`starstream eval --dataset ml-100k` compares the rankers on the same stream offline; `starstream --help` lists every command'],
    });
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
    await produceItems(log, topics.items, input.items, codecs, framing);
    const sent = await produceInteractions(log, topics.interactions, input.events, codecs, framing, NO_MALFORMED);
    logger.info({ topic: topics.interactions, sent, items: input.items.length, malformedLinesSkipped: input.skipped?.count ?? 0 }, 'replayed');
    return 0;
  } finally {
    await log.close();
  }
}

/** `out/replay-<name>.jsonl`, the name reduced to file-name-safe characters. */
export function replayOutFile(name: string): string {
  const safe = name.replace(/[^\w.-]+/g, '_').replace(/^[_.]+|_+$/g, '') || 'input';
  return `out/replay-${safe}.jsonl`;
}

export async function loadSource(source: string, logger: Logger): Promise<ReplaySource> {
  if (!isDatasetName(source)) {
    const kind = await pathKind(source);
    if (kind === 'file' && !source.endsWith('.jsonl')) {
      throw new InputError(
        `replay: ${source} is a file; replay reads a .jsonl file of interactions, a data set directory (MovieLens or Last.fm format) or a known data set name`,
      );
    }
    if (kind === 'file') return loadJsonl(source, logger);
    if (kind === 'missing' && source.endsWith('.jsonl')) throw new InputError(`replay: no such file ${source}`);
  }
  const dataset = await loadDatasetArg(source, 'replay');
  const name = isDatasetName(source) ? source : basename(dataset.dir);
  return { items: dataset.items, events: dataset.interactions, total: dataset.interactions.length, name, skipped: null };
}

async function loadJsonl(path: string, logger: Logger): Promise<ReplaySource> {
  const events: Interaction[] = [];
  let skipped = 0;
  let first: string | undefined;
  for await (const entry of readInteractionsJsonl(path)) {
    if (entry.kind === 'interaction') {
      events.push(entry.interaction);
      continue;
    }
    skipped++;
    first ??= `line ${entry.line}: ${entry.error}`;
    if (skipped <= MALFORMED_LOGGED) logger.warn({ line: entry.line, error: entry.error }, 'malformed line skipped');
    else if (skipped === MALFORMED_LOGGED + 1) logger.warn({}, 'more malformed lines: counted in the summary, not logged');
  }
  if (events.length === 0) {
    throw new InputError(`replay: ${path} holds no valid interaction${skipped > 0 ? ` (${skipped} malformed lines; first: ${first})` : ' (it is empty)'}`);
  }
  const name = basename(path).replace(/\.jsonl$/, '');
  return { items: [], events, total: events.length, name, skipped: { count: skipped, ...(first ? { first } : {}) } };
}
