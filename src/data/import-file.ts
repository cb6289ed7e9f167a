import { basename } from 'node:path';
import type { Interaction } from '../domain/events.ts';
import { BadInputError, FatalError } from '../errors/index.ts';
import type { Catalogue } from './catalogue.ts';
import { mapRow, resolveMapping, type ColumnMap, type ResolvedMapping, type TimeFormat } from './mapping.ts';
import { ProblemTally } from './problems.ts';
import { readTable, tableFormat, TABLE_EXTENSIONS } from './table.ts';

/**
 * A user's interaction file read through a column map, with everything `validate` reports about it: rows
 * that cannot be read or mapped (bad values), rows out of time order, duplicate rows and event ids, item ids
 * the catalogue lacks. The import (`replay FILE`) runs the usable events and warns with the same tallies.
 */

export interface OwnFileOptions {
  readonly map: ColumnMap;
  readonly timeFormat: TimeFormat;
  readonly catalogue: Catalogue | null;
  /**
   * The checks the pipeline's ingest applies to every event (ids, type, value, time range), so that a row the
   * pipeline would dead-letter is a bad value here; throws `BadInputError`. @default none
   */
  readonly check?: (interaction: Interaction) => void;
}

export interface OwnFile {
  readonly path: string;
  /** Null when the file holds no readable row to resolve the map against. */
  readonly mapping: ResolvedMapping | null;
  /** Non-blank rows (the CSV header not counted). */
  readonly rows: number;
  /** The usable events, in file order. */
  readonly events: Interaction[];
  readonly problems: ProblemTally;
  readonly users: number;
  readonly items: number;
  /** Earliest and latest event time, ms; null without events. */
  readonly span: { readonly firstMs: number; readonly lastMs: number } | null;
}

/**
 * Reads `path` (`.csv`, `.tsv`, `.jsonl`, `.ndjson`). Throws `FatalError` for a file of another kind
 * (`IMPORT_FORMAT`), one that cannot be read, or a map that does not fit its columns (`MAPPING_COLUMN`).
 */
export async function readOwnFile(path: string, options: OwnFileOptions): Promise<OwnFile> {
  const format = tableFormat(path);
  if (!format) throw new FatalError('IMPORT_FORMAT', `${path}: an interaction file is a ${TABLE_EXTENSIONS.join(', ')} file`);
  const idPrefix = basename(path).replace(/\.[^.]+$/, '');
  const problems = new ProblemTally();
  const events: Interaction[] = [];
  const users = new Set<string>();
  const items = new Set<string>();
  const seenRows = new Map<string, number>();
  const seenIds = new Map<string, number>();
  let mapping: ResolvedMapping | null = null;
  let rows = 0;
  let latest = { ms: Number.NEGATIVE_INFINITY, line: 0 };
  let firstMs = Number.POSITIVE_INFINITY;

  for await (const entry of readTable(path, format)) {
    if (entry.kind === 'header') {
      mapping = resolveMapping(options.map, entry.columns, options.timeFormat, path);
      continue;
    }
    rows++;
    if (entry.kind === 'malformed') {
      problems.add('unreadable', entry.line, entry.error);
      continue;
    }
    // JSON lines name their columns in every row: the first readable row stands for the header.
    mapping ??= resolveMapping(options.map, Object.keys(entry.values), options.timeFormat, path);
    const mapped = mapRow(entry.values, mapping, entry.line, idPrefix);
    if (!mapped.ok) {
      problems.add('bad-value', entry.line, mapped.error);
      continue;
    }
    const event = mapped.interaction;
    try {
      options.check?.(event);
    } catch (err) {
      if (!(err instanceof BadInputError)) throw err;
      problems.add('bad-value', entry.line, `${err.message} (${err.code})`);
      continue;
    }
    if (event.timestampMs < latest.ms) {
      problems.add('time-order', entry.line, `time ${new Date(event.timestampMs).toISOString()} is before line ${latest.line}'s ${new Date(latest.ms).toISOString()}`);
    } else {
      latest = { ms: event.timestampMs, line: entry.line };
    }
    const key = JSON.stringify([event.userId, event.itemId, event.type, event.value, event.timestampMs]);
    const same = seenRows.get(key);
    if (same !== undefined) problems.add('duplicate-row', entry.line, `the same event as line ${same}`);
    else seenRows.set(key, entry.line);
    if (mapping.columns.id !== undefined) {
      const sameId = seenIds.get(event.eventId);
      if (sameId !== undefined) problems.add('duplicate-id', entry.line, `event id ${event.eventId} is also on line ${sameId}`);
      else seenIds.set(event.eventId, entry.line);
    }
    if (options.catalogue && !options.catalogue.entries.has(event.itemId)) {
      problems.add('unknown-item', entry.line, `item ${event.itemId} is not in ${options.catalogue.path}`);
    }
    users.add(event.userId);
    items.add(event.itemId);
    firstMs = Math.min(firstMs, event.timestampMs);
    events.push(event);
  }
  return {
    path,
    mapping,
    rows,
    events,
    problems,
    users: users.size,
    items: items.size,
    span: events.length > 0 ? { firstMs, lastMs: latest.ms } : null,
  };
}

/** The events in time order; `sort` is stable, so events of one time keep their file order. */
export function inTimeOrder(events: readonly Interaction[]): Interaction[] {
  return [...events].sort((a, b) => a.timestampMs - b.timestampMs);
}
