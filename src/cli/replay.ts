import { basename } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Interaction, Item } from '../domain/events.ts';
import { catalogueItems, readCatalogue } from '../data/catalogue.ts';
import { isDatasetName } from '../data/datasets.ts';
import { inTimeOrder, readOwnFile } from '../data/import-file.ts';
import { readInteractionsJsonl } from '../data/jsonl.ts';
import { describeMapping, type ColumnMap, type TimeFormat } from '../data/mapping.ts';
import { PROBLEM_KINDS } from '../data/problems.ts';
import { TABLE_EXTENSIONS, tableFormat } from '../data/table.ts';
import { createFraming } from '../eventlog/codec/framing.ts';
import { createCodecs } from '../eventlog/codec/avro.ts';
import { createEventLog } from '../eventlog/create.ts';
import { topicNames } from '../eventlog/topics.ts';
import { FatalError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { validateInteraction } from '../stages/ingest/validate.ts';
import { runInProcess, type StreamInput } from './demo.ts';
import { NO_MALFORMED, produceInteractions, produceItems } from './produce.ts';
import { printSummary } from './report.ts';
import { serveMode } from './serve.ts';
import { loadDatasetArg, pathKind } from './sources.ts';
import { InputError } from './usage.ts';

/**
 * `starstream replay <source>`: a data set (ml-100k, lastfm, a directory), a JSON-lines file of interactions,
 * or your own CSV, TSV or JSON-lines file read through a column map (`--map`, `--time-format`, with an optional
 * `--catalogue` of item titles and categories): the import. On Kafka it is produced into the input topics for
 * running pipelines; on the embedded default it runs through the pipeline in this process and ends with its
 * summary (`--serve`: and keeps the pipeline and the API up).
 * Malformed lines and rows with bad values never reach the log: they are counted, the first few logged, and
 * the count is in the summary (and in the `replayed` log line on Kafka). Your own file's events are sorted by
 * time when they are not in order (a warning says how many were not); `starstream validate` reports all of it
 * before an import.
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

/** How to read your own file (the import); all optional, and only for a file, not a data set. */
export interface OwnDataOptions {
  /** `--map`: fields to columns; unnamed fields are looked for under their usual names. */
  readonly map?: ColumnMap;
  /** `--time-format`. @default 'auto' */
  readonly timeFormat?: TimeFormat;
  /** `--catalogue FILE`: item titles and categories. */
  readonly catalogue?: string;
}

export interface ReplayOptions extends OwnDataOptions {
  readonly teacher?: StreamInput['teacher'];
  /** `--serve`: keep the pipeline and its API up after the stream (embedded only). */
  readonly serve?: boolean;
  /** Made by `serve` (printed with the examples) rather than configured. */
  readonly tokenGenerated?: boolean;
  /** `--out-limit`: bytes per recommendations file before it rotates (embedded only). */
  readonly outLimitBytes?: number;
}

export async function replay(config: Config, logger: Logger, source: string, options: ReplayOptions = {}): Promise<number> {
  const { teacher, serve } = options;
  if (serve && config.eventLog.kind !== 'embedded') {
    throw new InputError('replay --serve runs the pipeline in this process (the embedded event log); on Kafka, `starstream run` serves the API and POST /v1/events');
  }
  const input = await loadSource(source, logger, options, config);
  if (config.eventLog.kind === 'embedded') {
    const out = replayOutFile(input.name);
    const report = (summary: Parameters<typeof printSummary>[0]): void =>
      printSummary(summary, {
        title: `replay ${input.name}`,
        out,
        ...(input.skipped ? { skippedLines: input.skipped } : {}),
        next: serve
          ? []
          : [
              '`starstream eval --dataset ml-100k` compares the rankers on the same stream offline; `starstream --help` lists every command',
              'the same command with --serve keeps the pipeline and its API up after the stream: query it, POST events',
            ],
      });
    const summary = await runInProcess(config, logger, {
      items: input.items,
      events: input.events,
      total: input.total,
      malformed: NO_MALFORMED,
      out,
      ...(options.outLimitBytes !== undefined ? { outLimitBytes: options.outLimitBytes } : {}),
      ...(teacher ? { teacher } : {}),
      ...(serve ? { serve: serveMode(report, options.tokenGenerated === true) } : {}),
    });
    if (!serve) report(summary);
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

export async function loadSource(source: string, logger: Logger, own: OwnDataOptions = {}, config?: Config): Promise<ReplaySource> {
  const ownFlags = own.map !== undefined || own.timeFormat !== undefined || own.catalogue !== undefined;
  if (!isDatasetName(source)) {
    const kind = await pathKind(source);
    const format = tableFormat(source);
    if (kind === 'file' && !format) {
      throw new InputError(
        `replay: ${source} is a file of no kind replay knows; it reads interactions from a ${TABLE_EXTENSIONS.join(', ')} file, a data set directory (MovieLens or Last.fm format) or a known data set name`,
      );
    }
    if (kind === 'file' && format === 'jsonl' && !ownFlags) return loadJsonl(source, logger);
    if (kind === 'file') return loadOwnFile(source, logger, own, config);
    if (kind === 'missing' && format) throw new InputError(`replay: no such file ${source}`);
  }
  if (ownFlags) throw new InputError(`replay: --map, --time-format and --catalogue read your own file (${TABLE_EXTENSIONS.join(', ')}), not a data set`);
  const dataset = await loadDatasetArg(source, 'replay');
  const name = isDatasetName(source) ? source : basename(dataset.dir);
  return { items: dataset.items, events: dataset.interactions, total: dataset.interactions.length, name, skipped: null };
}

/**
 * Your own file through its column map: rows the pipeline could not use (unreadable, bad values, refused by the
 * ingest checks) are skipped and counted; the rest, sorted by time; the catalogue's items, when one is given.
 * Every kind of problem is one warning with its count and first lines (`validate` prints the same).
 */
async function loadOwnFile(path: string, logger: Logger, own: OwnDataOptions, config: Config | undefined): Promise<ReplaySource> {
  const catalogue = own.catalogue ? await readCatalogue(own.catalogue) : null;
  const limits = config?.pipeline;
  const file = await readOwnFile(path, {
    map: own.map ?? {},
    timeFormat: own.timeFormat ?? 'auto',
    catalogue,
    ...(limits ? { check: (e: Interaction) => void validateInteraction(e, { nowMs: Date.now(), maxEventAgeMs: limits.maxEventAgeMs, maxFutureSkewMs: limits.maxFutureSkewMs }) } : {}),
  });
  if (file.mapping) logger.info({ file: path, columns: describeMapping(file.mapping), rows: file.rows, events: file.events.length }, 'importing');
  const problems = [...file.problems.list(), ...(catalogue?.problems.list() ?? [])];
  for (const p of problems) {
    const consequence = p.kind === 'time-order' ? '; the events are replayed sorted by time' : p.kind === 'unreadable' || p.kind === 'bad-value' ? '; skipped' : '';
    logger.warn({ count: p.count, lines: p.lines, first: p.first }, `${PROBLEM_KINDS[p.kind]}${consequence}`);
  }
  const skippedProblems = problems.filter((p) => p.kind === 'unreadable' || p.kind === 'bad-value');
  const skippedCount = skippedProblems.reduce((n, p) => n + p.count, 0);
  const first = skippedProblems.map((p) => p.first).sort((a, b) => lineOf(a) - lineOf(b))[0];
  if (file.events.length === 0) {
    throw new InputError(`replay: ${path} holds no usable interaction${file.rows === 0 ? ' (it is empty)' : ` (${file.rows} rows; first problem: ${first ?? 'none'})`}; \`starstream validate ${path}\` lists the problems`);
  }
  const events = file.problems.count('time-order') > 0 ? inTimeOrder(file.events) : file.events;
  const name = basename(path).replace(/\.[^.]+$/, '');
  return {
    items: catalogue ? catalogueItems(catalogue, events) : [],
    events,
    total: events.length,
    name,
    skipped: { count: skippedCount, ...(first ? { first } : {}) },
  };
}

function lineOf(message: string): number {
  return Number(/^line (\d+)/.exec(message)?.[1] ?? Number.MAX_SAFE_INTEGER);
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
