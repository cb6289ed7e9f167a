import { openForReading } from './files.ts';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { FatalError } from '../errors/index.ts';
import { delimiterFor, readCsv } from './csv.ts';

/**
 * A user's file as rows of named values, whatever its format: CSV or TSV (the first record names the columns)
 * or JSON lines (each line an object; its keys are the columns). What the import (`replay FILE --map …`),
 * `validate` and the catalogue reader read through. Like the other readers it never throws on content: a
 * row that cannot be read is a `malformed` entry with its 1-based line and why.
 */

export type TableFormat = 'csv' | 'tsv' | 'jsonl';

export type TableEntry =
  /** CSV/TSV only, first: the header's column names. */
  | { readonly kind: 'header'; readonly columns: readonly string[] }
  | { readonly kind: 'row'; readonly line: number; readonly values: Readonly<Record<string, unknown>> }
  | { readonly kind: 'malformed'; readonly line: number; readonly error: string };

/** The format a file name implies, or null for a name with none of the known extensions. */
export function tableFormat(path: string): TableFormat | null {
  if (/\.csv$/i.test(path)) return 'csv';
  if (/\.tsv$/i.test(path)) return 'tsv';
  if (/\.(jsonl|ndjson)$/i.test(path)) return 'jsonl';
  return null;
}

/** Extensions `tableFormat` knows, for messages. */
export const TABLE_EXTENSIONS = ['.csv', '.tsv', '.jsonl', '.ndjson'] as const;

/**
 * Reads `path` as rows. A CSV row with more fields than the header is malformed; one with fewer leaves the
 * missing columns out of `values` (a reader asking for them sees `undefined`). A header that names a column
 * twice is a `FatalError` `TABLE_HEADER` (no row could say which one it means). A file that cannot be opened
 * is a `FatalError` `CSV_UNREADABLE` / `TABLE_UNREADABLE`.
 */
export async function* readTable(path: string, format: TableFormat): AsyncGenerator<TableEntry, void, undefined> {
  if (format === 'jsonl') {
    yield* readJsonObjects(path);
    return;
  }
  let columns: readonly string[] | null = null;
  for await (const entry of readCsv(path, { delimiter: format === 'tsv' ? '\t' : delimiterFor(path) })) {
    if (entry.kind === 'malformed') {
      yield entry;
      continue;
    }
    if (columns === null) {
      columns = entry.fields.map((c) => c.trim());
      const seen = new Set<string>();
      for (const c of columns) {
        if (seen.has(c)) throw new FatalError('TABLE_HEADER', `${path}: the header names column "${c}" twice`);
        seen.add(c);
      }
      yield { kind: 'header', columns };
      continue;
    }
    if (entry.fields.length > columns.length) {
      yield { kind: 'malformed', line: entry.line, error: `${entry.fields.length} fields, the header has ${columns.length} columns` };
      continue;
    }
    const values: Record<string, unknown> = {};
    entry.fields.forEach((field, i) => (values[columns![i]!] = field));
    yield { kind: 'row', line: entry.line, values };
  }
}

async function* readJsonObjects(path: string): AsyncGenerator<TableEntry, void, undefined> {
  const input = await openFile(path);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      const raw = line === 1 && text.startsWith('\uFEFF') ? text.slice(1) : text;
      if (raw.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch (err) {
        yield { kind: 'malformed', line, error: `invalid JSON: ${(err as Error).message}` };
        continue;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        yield { kind: 'malformed', line, error: 'not a JSON object' };
        continue;
      }
      yield { kind: 'row', line, values: parsed as Record<string, unknown> };
    }
  } finally {
    lines.close();
    input.destroy();
  }
}

function openFile(path: string): Promise<Readable> {
  return openForReading(path, 'TABLE_UNREADABLE');
}
