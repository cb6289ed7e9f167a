import { nearestName } from '../config/fields.ts';
import { EVENT_TYPES, type EventType, type Interaction } from '../domain/events.ts';
import { FatalError } from '../errors/index.ts';

/**
 * Your own columns → interactions: the column map (`--map user=customer_id,item=sku,time=ts`), the time
 * format (`--time-format`) and the conversion of one row. Used by the import (`replay FILE --map …`) and
 * `validate`; the rows come from `table.ts`.
 *
 * Fields: `user`, `item`, `time` (required) and `type`, `value`, `id` (optional). A field the map does not
 * name is looked for under its usual column names ({@link DEFAULT_COLUMNS}), so a file whose columns are
 * already called `user,item,time` (or `userId,itemId,timestampMs`) needs no map. Values are trimmed; numbers
 * in JSON lines are taken as their decimal text for ids. Without a `type` column every event is a `view`;
 * without an `id` column an event's id is `<file name>:<line>`, stable across imports of the same file.
 */

export const MAPPED_FIELDS = ['user', 'item', 'time', 'type', 'value', 'id'] as const;
export type MappedField = (typeof MAPPED_FIELDS)[number];

const REQUIRED: readonly MappedField[] = ['user', 'item', 'time'];

/** Columns tried, in order, for a field the map does not name. */
export const DEFAULT_COLUMNS: Readonly<Record<MappedField, readonly string[]>> = {
  user: ['user', 'userId', 'user_id'],
  item: ['item', 'itemId', 'item_id'],
  time: ['time', 'timestampMs', 'timestamp', 'ts'],
  type: ['type', 'eventType', 'event_type'],
  value: ['value', 'rating'],
  id: ['id', 'eventId', 'event_id'],
};

export type ColumnMap = Partial<Record<MappedField, string>>;

/**
 * How `time` is written. `auto`: a column whose name ends in `ms` (`timestampMs`, `ts_ms`) holds epoch
 * milliseconds; otherwise a number of 10^11 or more is epoch milliseconds, a smaller one epoch seconds
 * (10^11 s is the year 5138), and text is ISO 8601.
 */
export const TIME_FORMATS = ['auto', 'epoch-s', 'epoch-ms', 'iso'] as const;
export type TimeFormat = (typeof TIME_FORMATS)[number];

export function isTimeFormat(text: string): text is TimeFormat {
  return (TIME_FORMATS as readonly string[]).includes(text);
}

/** A map resolved against a file's columns: the column of each field (absent = not in the file). */
export interface ResolvedMapping {
  readonly columns: Readonly<Partial<Record<MappedField, string>>>;
  readonly timeFormat: TimeFormat;
}

/**
 * `user=customer_id,item=sku,time=ts` → a column map. Throws `FatalError` `MAPPING_INVALID` naming the part
 * that is wrong (an unknown field, with the near name; a field given twice; a part without `=`).
 */
export function parseColumnMap(text: string): ColumnMap {
  const map: ColumnMap = {};
  for (const part of text.split(',')) {
    const at = part.indexOf('=');
    const field = part.slice(0, at).trim();
    const column = part.slice(at + 1).trim();
    if (at <= 0 || column === '') throw new FatalError('MAPPING_INVALID', `--map wants FIELD=COLUMN pairs separated by commas, got "${part.trim()}"`);
    if (!(MAPPED_FIELDS as readonly string[]).includes(field)) {
      const near = nearestName(field, MAPPED_FIELDS);
      throw new FatalError('MAPPING_INVALID', `--map: unknown field "${field}" (fields: ${MAPPED_FIELDS.join(', ')})${near ? `; did you mean ${near}?` : ''}`);
    }
    if (map[field as MappedField] !== undefined) throw new FatalError('MAPPING_INVALID', `--map names ${field} twice`);
    map[field as MappedField] = column;
  }
  return map;
}

/**
 * Resolves `map` against the columns a file has (its header; for JSON lines the first row's keys). Throws
 * `FatalError` `MAPPING_COLUMN` for a mapped column the file lacks (with the near column name) and for a
 * required field no column serves, listing the file's columns.
 */
export function resolveMapping(map: ColumnMap, columns: readonly string[], timeFormat: TimeFormat, file: string): ResolvedMapping {
  const resolved: Partial<Record<MappedField, string>> = {};
  const has = new Set(columns);
  const listed = columns.length > 0 ? columns.join(', ') : 'none';
  for (const field of MAPPED_FIELDS) {
    const named = map[field];
    if (named !== undefined) {
      if (!has.has(named)) {
        const near = nearestName(named, columns);
        throw new FatalError('MAPPING_COLUMN', `--map ${field}=${named}: ${file} has no column "${named}" (columns: ${listed})${near ? `; did you mean "${near}"?` : ''}`);
      }
      resolved[field] = named;
      continue;
    }
    const found = DEFAULT_COLUMNS[field].find((c) => has.has(c));
    if (found !== undefined) resolved[field] = found;
    else if (REQUIRED.includes(field)) {
      throw new FatalError('MAPPING_COLUMN', `${file} has no ${field} column (columns: ${listed}); name it with --map ${field}=COLUMN`);
    }
  }
  return { columns: resolved, timeFormat };
}

/** `user=customer_id, item=sku, time=ts (epoch-s)`: what a mapping reads, for reports and logs. */
export function describeMapping(mapping: ResolvedMapping): string {
  return MAPPED_FIELDS.filter((f) => mapping.columns[f] !== undefined)
    .map((f) => `${f}=${mapping.columns[f]}${f === 'time' ? ` (${timeFormatOf(mapping)})` : ''}`)
    .join(', ');
}

/** The time format in force: `auto` with a column named `…ms` is epoch milliseconds. */
export function timeFormatOf(mapping: ResolvedMapping): TimeFormat {
  if (mapping.timeFormat === 'auto' && /ms$/i.test(mapping.columns.time ?? '')) return 'epoch-ms';
  return mapping.timeFormat;
}

export type MappedRow = { readonly ok: true; readonly interaction: Interaction } | { readonly ok: false; readonly error: string };

/** One row → an interaction, or why not (naming the field, the column and the value). Never throws. */
export function mapRow(values: Readonly<Record<string, unknown>>, mapping: ResolvedMapping, line: number, idPrefix: string): MappedRow {
  const { columns } = mapping;
  const read = (field: MappedField): string | undefined | { error: string } => {
    const column = columns[field];
    if (column === undefined) return undefined;
    const raw = values[column];
    if (raw === undefined || raw === null) return undefined;
    if (typeof raw === 'string') return raw.trim();
    if (typeof raw === 'number' && Number.isFinite(raw)) return String(raw);
    return { error: `${field} (column ${column}) is ${Array.isArray(raw) ? 'an array' : typeof raw}, not text or a number` };
  };
  const fail = (error: string): MappedRow => ({ ok: false, error });

  const texts = {} as Record<MappedField, string | undefined>;
  for (const field of MAPPED_FIELDS) {
    const v = read(field);
    if (typeof v === 'object') return fail(v.error);
    texts[field] = v;
  }
  for (const field of REQUIRED) {
    if (!texts[field]) return fail(`${field} (column ${columns[field]}) is empty`);
  }
  const time = parseTime(texts.time!, timeFormatOf(mapping));
  if (typeof time === 'string') return fail(`time (column ${columns.time}) ${time}`);
  let type: EventType = 'view';
  if (texts.type) {
    const t = texts.type.toLowerCase();
    if (!(EVENT_TYPES as readonly string[]).includes(t)) return fail(`type (column ${columns.type}) "${clip(texts.type)}" is not one of ${EVENT_TYPES.join(', ')}`);
    type = t as EventType;
  }
  let value: number | null = null;
  if (texts.value) {
    const n = Number(texts.value);
    if (!Number.isFinite(n)) return fail(`value (column ${columns.value}) "${clip(texts.value)}" is not a number`);
    value = n;
  }
  return {
    ok: true,
    interaction: {
      eventId: texts.id || `${idPrefix}:${line}`,
      userId: texts.user!,
      itemId: texts.item!,
      type,
      value,
      timestampMs: time,
      context: {},
    },
  };
}

/** 10^11: as epoch seconds the year 5138, as epoch milliseconds March 1973. */
const AUTO_MS_FROM = 1e11;
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** Epoch milliseconds of `text` in `format`, or why it is not one (a phrase to follow the field's name). */
export function parseTime(text: string, format: TimeFormat): number | string {
  const numeric = /^-?\d+(\.\d+)?$/.test(text);
  const auto = format === 'auto';
  if (auto) format = numeric ? (Math.abs(Number(text)) >= AUTO_MS_FROM ? 'epoch-ms' : 'epoch-s') : 'iso';
  let ms: number;
  if (format === 'epoch-s' || format === 'epoch-ms') {
    if (!numeric) return `"${clip(text)}" is not ${format === 'epoch-s' ? 'epoch seconds' : 'epoch milliseconds'}`;
    ms = Math.round(Number(text) * (format === 'epoch-s' ? 1000 : 1));
  } else {
    const m = ISO_8601.exec(text);
    if (!m) return `"${clip(text)}" is ${auto ? 'neither epoch seconds or milliseconds nor' : 'not'} an ISO 8601 time (e.g. 2024-05-01T12:30:00Z)`;
    // No zone: UTC, so an import means the same on every machine. Fractions beyond milliseconds are cut.
    const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
    ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${frac.slice(0, 4)}${zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone}`);
    if (Number.isNaN(ms)) return `"${clip(text)}" is not a valid date and time`;
  }
  if (!Number.isSafeInteger(ms) || ms <= 0) return `"${clip(text)}" is not a time after 1970`;
  return ms;
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
