import { openForReading } from './files.ts';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { FatalError } from '../errors/index.ts';

/**
 * A small CSV reader (RFC 4180 as spreadsheets and databases write it), streaming record by record so memory
 * is one record whatever the file size:
 *
 * - fields are separated by `delimiter` (`,`; `\t` for `.tsv`), records by LF or CRLF;
 * - a field that starts with `"` is quoted: it may hold delimiters, `""` (one `"`) and line breaks (a record
 *   then spans several lines, and its `line` is the one it starts on); after the closing quote only a
 *   delimiter or the end of the record may follow;
 * - a `"` inside an unquoted field is kept as it is (a lenient reading of what many exporters write);
 * - blank lines are skipped; a UTF-8 byte-order mark before the first field is dropped.
 *
 * Never throws on content: a record that cannot be read comes back as a `malformed` entry with its line and
 * why, and reading goes on at the next line. Fields are not trimmed (whitespace may be data).
 */

export type CsvEntry =
  | { readonly kind: 'record'; readonly line: number; readonly fields: readonly string[] }
  | { readonly kind: 'malformed'; readonly line: number; readonly error: string };

export interface CsvOptions {
  /** One character. @default ',' */
  readonly delimiter?: string;
  /**
   * Characters one record may span (a quoted field left open would otherwise swallow the rest of the file);
   * past it the record is malformed and reading starts again at the next line. @default 1_048_576
   */
  readonly maxRecordChars?: number;
}

const DEFAULT_MAX_RECORD_CHARS = 1_048_576;

/** The delimiter a file's name implies: tab for `.tsv`, else comma. */
export function delimiterFor(path: string): string {
  return /\.tsv$/i.test(path) ? '\t' : ',';
}

/**
 * Reads a CSV file (path) or stream lazily, one entry per record (the header is a record like the others).
 * A path that cannot be opened throws `FatalError` `CSV_UNREADABLE`.
 */
export async function* readCsv(source: string | Readable, options: CsvOptions = {}): AsyncGenerator<CsvEntry, void, undefined> {
  const input = typeof source === 'string' ? await openFile(source) : source;
  const lines = createInterface({ input, crlfDelay: Infinity });
  const parser = new CsvParser(options.delimiter ?? ',', options.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS);
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      const entry = parser.push(line === 1 && text.startsWith('\uFEFF') ? text.slice(1) : text, line);
      if (entry) yield entry;
    }
    const last = parser.end();
    if (last) yield last;
  } finally {
    lines.close();
    if (typeof source === 'string') input.destroy();
  }
}

/** Parses CSV text held in memory (tests, small inputs); the same rules as `readCsv`. */
export function parseCsv(text: string, options: CsvOptions = {}): CsvEntry[] {
  const parser = new CsvParser(options.delimiter ?? ',', options.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS);
  const out: CsvEntry[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((raw, i) => {
    const withoutCr = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const entry = parser.push(i === 0 && withoutCr.startsWith('\uFEFF') ? withoutCr.slice(1) : withoutCr, i + 1);
    if (entry) out.push(entry);
  });
  const last = parser.end();
  if (last) out.push(last);
  return out;
}

/** Line-at-a-time state machine: a record is complete at the end of a line outside quotes. */
class CsvParser {
  private fields: string[] = [];
  private field = '';
  private inQuotes = false;
  /** The line the record in progress started on; 0 when none is in progress. */
  private startLine = 0;
  private chars = 0;

  constructor(
    private readonly delimiter: string,
    private readonly maxRecordChars: number,
  ) {
    if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
      throw new FatalError('CSV_DELIMITER', `a CSV delimiter is one character other than a quote or a line break, got ${JSON.stringify(delimiter)}`);
    }
  }

  push(text: string, line: number): CsvEntry | null {
    if (this.startLine === 0) {
      if (text.trim() === '') return null;
      this.startLine = line;
    } else {
      // A quoted field goes on across the line break.
      this.field += '\n';
    }
    this.chars += text.length + 1;
    if (this.chars > this.maxRecordChars) {
      const start = this.startLine;
      this.reset();
      return { kind: 'malformed', line: start, error: `record longer than ${this.maxRecordChars} characters (an unclosed quote?)` };
    }
    const d = this.delimiter;
    let afterQuote = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (this.inQuotes) {
        if (c !== '"') this.field += c;
        else if (text[i + 1] === '"') {
          this.field += '"';
          i++;
        } else {
          this.inQuotes = false;
          afterQuote = true;
        }
      } else if (c === d) {
        this.fields.push(this.field);
        this.field = '';
        afterQuote = false;
      } else if (afterQuote) {
        const start = this.startLine;
        const field = this.fields.length + 1;
        this.reset();
        return { kind: 'malformed', line: start, error: `unexpected ${JSON.stringify(c)} after the closing quote of field ${field}` };
      } else if (c === '"' && this.field === '') {
        this.inQuotes = true;
      } else {
        this.field += c;
      }
    }
    if (this.inQuotes) return null;
    this.fields.push(this.field);
    const entry: CsvEntry = { kind: 'record', line: this.startLine, fields: this.fields };
    this.reset();
    return entry;
  }

  /** At the end of the input: a record still open is an unclosed quote. */
  end(): CsvEntry | null {
    if (this.startLine === 0) return null;
    const start = this.startLine;
    this.reset();
    return { kind: 'malformed', line: start, error: 'quoted field not closed before the end of the file' };
  }

  private reset(): void {
    this.fields = [];
    this.field = '';
    this.inQuotes = false;
    this.startLine = 0;
    this.chars = 0;
  }
}

function openFile(path: string): Promise<Readable> {
  return openForReading(path, 'CSV_UNREADABLE');
}
