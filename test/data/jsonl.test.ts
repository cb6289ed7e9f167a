import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  formatInteraction,
  parseInteractionLine,
  readInteractionsJsonl,
  writeInteractionsJsonl,
  type JsonlEntry,
} from '../../src/data/jsonl.ts';
import { generateStream } from '../../src/data/synthetic.ts';
import { EVENT_TYPES, type Interaction } from '../../src/domain/events.ts';
import { FatalError } from '../../src/errors/index.ts';

async function collect(source: string | Readable): Promise<JsonlEntry[]> {
  const entries: JsonlEntry[] = [];
  for await (const entry of readInteractionsJsonl(source)) entries.push(entry);
  return entries;
}

const VALID = {
  eventId: 'e1',
  userId: 'u1',
  itemId: 'i1',
  type: 'view',
  value: 3,
  timestampMs: 1000,
  context: {},
};

describe('JSONL interactions', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'starstream-jsonl-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips a stream through a file', async () => {
    const path = join(dir, 'stream.jsonl');
    const events = [...generateStream({ users: 50, items: 100, events: 2000, seed: 'jsonl' })];
    assert.equal(
      await writeInteractionsJsonl(
        path,
        generateStream({ users: 50, items: 100, events: 2000, seed: 'jsonl' }),
      ),
      2000,
    );
    const entries = await collect(path);
    assert.ok(entries.every((e) => e.kind === 'interaction'));
    assert.deepEqual(
      entries.map((e) => (e.kind === 'interaction' ? e.interaction : null)),
      events,
    );
    assert.deepEqual(
      entries.map((e) => e.line),
      events.map((_, k) => k + 1),
    );
  });

  it('writes one JSON object per line, fields in schema order', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (chunk: Buffer) => chunks.push(chunk));
    const interaction: Interaction = { ...VALID, type: 'rating', context: { session: 's1' } };
    assert.equal(await writeInteractionsJsonl(out, [interaction]), 1);
    assert.equal(
      Buffer.concat(chunks).toString(),
      '{"eventId":"e1","userId":"u1","itemId":"i1","type":"rating","value":3,"timestampMs":1000,"context":{"session":"s1"}}\n',
    );
  });

  it('reports malformed lines with their number, text and reason, and goes on', async () => {
    const lines = [
      JSON.stringify(VALID), // 1
      '{"eventId": "e2", ', // 2 truncated
      '', // 3 blank: skipped
      JSON.stringify({ ...VALID, eventId: 'e4', type: 'like' }), // 4
      JSON.stringify({ ...VALID, eventId: '' }), // 5
      JSON.stringify({ ...VALID, timestampMs: 1.5 }), // 6
      JSON.stringify({ ...VALID, value: 'x' }), // 7
      JSON.stringify({ ...VALID, context: { a: 1 } }), // 8
      '[1, 2]', // 9
      JSON.stringify({
        eventId: 'e10',
        userId: 'u',
        itemId: 'i',
        type: 'click',
        timestampMs: 5,
        extra: true,
      }), // 10
    ];
    const path = join(dir, 'mixed.jsonl');
    await writeFile(path, `${lines.join('\r\n')}\r\n`);
    const entries = await collect(path);
    assert.deepEqual(
      entries.map((e) => [e.line, e.kind]),
      [
        [1, 'interaction'],
        [2, 'malformed'],
        [4, 'malformed'],
        [5, 'malformed'],
        [6, 'malformed'],
        [7, 'malformed'],
        [8, 'malformed'],
        [9, 'malformed'],
        [10, 'interaction'],
      ],
    );
    const reasons = entries.flatMap((e) => (e.kind === 'malformed' ? [e.error] : []));
    assert.match(reasons[0]!, /^invalid JSON/);
    assert.match(reasons[1]!, /^type must be one of/);
    assert.match(reasons[2]!, /^eventId/);
    assert.match(reasons[3]!, /^timestampMs/);
    assert.match(reasons[4]!, /^value/);
    assert.match(reasons[5]!, /^context/);
    assert.equal(reasons[6], 'not a JSON object');
    const second = entries[1]!;
    assert.ok(second.kind === 'malformed' && second.raw === lines[1], 'raw is the original line without CR');
    const last = entries.at(-1)!;
    assert.ok(last.kind === 'interaction');
    assert.deepEqual(last.interaction, {
      eventId: 'e10',
      userId: 'u',
      itemId: 'i',
      type: 'click',
      value: null,
      timestampMs: 5,
      context: {},
    });
  });

  it('reads from a stream and ignores a byte-order mark', async () => {
    const entries = await collect(Readable.from([`\uFEFF${JSON.stringify(VALID)}\n`]));
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.kind, 'interaction');
  });

  it('fails clearly when the file cannot be opened', async () => {
    await assert.rejects(collect(join(dir, 'absent.jsonl')), (err: unknown) => {
      assert.ok(err instanceof FatalError);
      assert.equal(err.code, 'JSONL_UNREADABLE');
      assert.match(err.message, /absent\.jsonl/);
      return true;
    });
  });

  it('parses whatever it formats (property)', () => {
    const text = fc.string({ minLength: 1 });
    const interaction = fc.record({
      eventId: text,
      userId: text,
      itemId: text,
      type: fc.constantFrom(...EVENT_TYPES),
      value: fc.option(fc.double({ noNaN: true, noDefaultInfinity: true }), { nil: null }),
      timestampMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      context: fc.dictionary(fc.string(), fc.string()),
    });
    fc.assert(
      fc.property(interaction, (i) => {
        const entry = parseInteractionLine(formatInteraction(i), 1);
        assert.equal(entry.kind, 'interaction');
        // -0 becomes 0 in JSON (the same value for every consumer); parsed objects have the usual prototype.
        const expected = { ...i, value: i.value === 0 ? 0 : i.value, context: { ...i.context } };
        assert.deepEqual(entry.kind === 'interaction' && entry.interaction, expected);
      }),
    );
  });

  it('keeps a file readable line by line after writing', async () => {
    const path = join(dir, 'two.jsonl');
    await writeInteractionsJsonl(path, [VALID as Interaction, { ...(VALID as Interaction), eventId: 'e2' }]);
    assert.equal((await readFile(path, 'utf8')).split('\n').length, 3);
  });
});
