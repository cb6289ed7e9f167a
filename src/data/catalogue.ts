import type { Item } from '../domain/events.ts';
import { FatalError } from '../errors/index.ts';
import { ProblemTally } from './problems.ts';
import { readTable, tableFormat, TABLE_EXTENSIONS } from './table.ts';

/**
 * An item catalogue file for an import (`--catalogue items.csv`): CSV, TSV or JSON lines with an `id` column
 * (or `itemId`, `item_id`, `item`), an optional `title` (or `name`) and optional `categories` (or `genres`,
 * `category`): in CSV one text with `|` or `;` between categories, in JSON lines an array of strings or such
 * a text. Rows without an id and repeated ids are tallied as problems (the first row of an id wins).
 */

export interface CatalogueEntry {
  readonly title: string;
  readonly categories: readonly string[];
}

export interface Catalogue {
  readonly path: string;
  readonly entries: ReadonlyMap<string, CatalogueEntry>;
  readonly problems: ProblemTally;
}

const COLUMNS = {
  id: ['id', 'itemId', 'item_id', 'item'],
  title: ['title', 'name'],
  categories: ['categories', 'genres', 'category'],
} as const;

/** Reads a catalogue file; a file that is not there, of an unknown kind or without an id column is a `FatalError`. */
export async function readCatalogue(path: string): Promise<Catalogue> {
  const format = tableFormat(path);
  if (!format) throw new FatalError('CATALOGUE_FORMAT', `--catalogue ${path}: a catalogue is a ${TABLE_EXTENSIONS.join(', ')} file`);
  const entries = new Map<string, CatalogueEntry>();
  const problems = new ProblemTally();
  let idColumn: string | undefined;
  const pick = (names: readonly string[], values: Readonly<Record<string, unknown>>): unknown => {
    for (const n of names) if (values[n] !== undefined) return values[n];
    return undefined;
  };
  for await (const entry of readTable(path, format)) {
    if (entry.kind === 'header') {
      idColumn = COLUMNS.id.find((c) => entry.columns.includes(c));
      if (!idColumn) throw new FatalError('CATALOGUE_COLUMNS', `--catalogue ${path} has no id column (columns: ${entry.columns.join(', ')}); name it id`);
      continue;
    }
    if (entry.kind === 'malformed') {
      problems.add('catalogue-unreadable', entry.line, entry.error);
      continue;
    }
    const rawId = idColumn ? entry.values[idColumn] : pick(COLUMNS.id, entry.values);
    const id = typeof rawId === 'number' ? String(rawId) : typeof rawId === 'string' ? rawId.trim() : '';
    if (id === '') {
      problems.add('catalogue-bad-value', entry.line, 'no item id');
      continue;
    }
    if (entries.has(id)) {
      problems.add('catalogue-duplicate-id', entry.line, `item ${id} is listed again`);
      continue;
    }
    const title = pick(COLUMNS.title, entry.values);
    const categories = pick(COLUMNS.categories, entry.values);
    if (title !== undefined && typeof title !== 'string') {
      problems.add('catalogue-bad-value', entry.line, 'title is not text');
      continue;
    }
    const list = toCategories(categories);
    if (list === null) {
      problems.add('catalogue-bad-value', entry.line, 'categories are neither text nor an array of strings');
      continue;
    }
    entries.set(id, { title: (title ?? '').trim(), categories: list });
  }
  return { path, entries, problems };
}

function toCategories(value: unknown): string[] | null {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return value.split(/[|;]/).map((c) => c.trim()).filter((c) => c.length > 0);
  if (Array.isArray(value) && value.every((c) => typeof c === 'string')) return value.map((c: string) => c.trim()).filter((c) => c.length > 0);
  return null;
}

/**
 * The catalogue as items for the items topic: every entry, stamped with its first sighting in `events` (the
 * earliest moment the data shows it existed) or, never seen, the first event's time.
 */
export function catalogueItems(catalogue: Catalogue, events: Iterable<{ readonly itemId: string; readonly timestampMs: number }>): Item[] {
  const firstSeen = new Map<string, number>();
  let earliest = Number.POSITIVE_INFINITY;
  for (const e of events) {
    earliest = Math.min(earliest, e.timestampMs);
    const seen = firstSeen.get(e.itemId);
    if (seen === undefined || e.timestampMs < seen) firstSeen.set(e.itemId, e.timestampMs);
  }
  const fallback = Number.isFinite(earliest) ? earliest : 0;
  return [...catalogue.entries].map(([itemId, entry]) => ({
    itemId,
    title: entry.title,
    categories: entry.categories,
    description: null,
    attributes: {},
    timestampMs: firstSeen.get(itemId) ?? fallback,
  }));
}
