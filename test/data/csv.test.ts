import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parseCsv, readCsv, type CsvEntry } from '../../src/data/csv.ts';
import { FatalError } from '../../src/errors/index.ts';

async function collect(source: string | Readable, delimiter?: string): Promise<CsvEntry[]> {
  const out: CsvEntry[] = [];
  for await (const e of readCsv(source, delimiter ? { delimiter } : {})) out.push(e);
  return out;
}

const records = (entries: readonly CsvEntry[]): (readonly string[])[] => entries.flatMap((e) => (e.kind === 'record' ? [e.fields] : []));

describe('CSV reader', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'starstream-csv-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads plain and quoted fields: delimiters, doubled quotes and line breaks inside quotes', () => {
    const entries = parseCsv('a,b,c\n1,"x,y","say ""hi"""\n2,"two\nlines",\n');
    assert.deepEqual(records(entries), [
      ['a', 'b', 'c'],
      ['1', 'x,y', 'say "hi"'],
      ['2', 'two\nlines', ''],
    ]);
    assert.deepEqual(
      entries.map((e) => e.line),
      [1, 2, 3],
      'a record spanning lines is numbered by the line it starts on',
    );
  });

  it('accepts CRLF, skips blank lines, drops a byte-order mark, keeps whitespace', () => {
    assert.deepEqual(records(parseCsv('\uFEFFid,name\r\n\r\n 1 , a \r\n')), [
      ['id', 'name'],
      [' 1 ', ' a '],
    ]);
  });

  it('keeps a quote inside an unquoted field, and empty fields', () => {
    assert.deepEqual(records(parseCsv('5" disk,,"",x\n')), [['5" disk', '', '', 'x']]);
  });

  it('a character after a closing quote is a malformed record; reading goes on at the next line', () => {
    const entries = parseCsv('a,b\n"x"y,1\nok,2\n');
    assert.deepEqual(entries[1], { kind: 'malformed', line: 2, error: 'unexpected "y" after the closing quote of field 1' });
    assert.deepEqual(records(entries), [
      ['a', 'b'],
      ['ok', '2'],
    ]);
  });

  it('a quote left open is malformed at the end of the file, or past the record bound', () => {
    assert.deepEqual(parseCsv('a\n"open\nmore\n').at(-1), { kind: 'malformed', line: 2, error: 'quoted field not closed before the end of the file' });
    const bounded = parseCsv(`"open\n${'x,'.repeat(30)}\nafter,1\n`, { maxRecordChars: 40 });
    assert.equal(bounded[0]!.kind, 'malformed');
    assert.match((bounded[0] as { error: string }).error, /longer than 40 characters/);
  });

  it('reads a file (tab-separated here) the same as text, and names a file it cannot open', async () => {
    const path = join(dir, 'x.tsv');
    await writeFile(path, 'user\titem\nu1\t"i\t1"\n');
    assert.deepEqual(records(await collect(path, '\t')), [
      ['user', 'item'],
      ['u1', 'i\t1'],
    ]);
    await assert.rejects(collect(join(dir, 'missing.csv')), (err: unknown) => err instanceof FatalError && err.code === 'CSV_UNREADABLE');
  });

  it('round-trips any table written with RFC 4180 quoting', async () => {
    const field = fc.string({ unit: fc.constantFrom('a', 'b', ',', '"', '\n', ' ', 'é') });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(field, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }), async (table) => {
        // A record of one empty field would be a blank line: quote every field, as many writers do.
        const text = table.map((row) => row.map((f) => `"${f.replace(/"/g, '""')}"`).join(',')).join('\r\n') + '\r\n';
        assert.deepEqual(records(await collect(Readable.from([text]))), table);
        assert.deepEqual(records(parseCsv(text)), table);
      }),
      { numRuns: 200 },
    );
  });
});
