import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeMapping, mapRow, parseColumnMap, parseTime, resolveMapping } from '../../src/data/mapping.ts';
import { FatalError } from '../../src/errors/index.ts';

const code = (expected: string) => (err: unknown) => err instanceof FatalError && err.code === expected;

describe('column map', () => {
  it('parses FIELD=COLUMN pairs; names what is wrong', () => {
    assert.deepEqual(parseColumnMap('user=customer_id, item=sku,time=ts'), { user: 'customer_id', item: 'sku', time: 'ts' });
    assert.throws(() => parseColumnMap('usr=customer_id'), (err: unknown) => code('MAPPING_INVALID')(err) && /unknown field "usr".*did you mean user\?/.test((err as Error).message));
    assert.throws(() => parseColumnMap('user=a,user=b'), /names user twice/);
    assert.throws(() => parseColumnMap('user'), /FIELD=COLUMN/);
    assert.throws(() => parseColumnMap('user='), /FIELD=COLUMN/);
  });

  it('resolves against the columns: named ones, else the usual names; a missing column is named with the near one', () => {
    const m = resolveMapping({ user: 'customer_id', item: 'sku', time: 'ts' }, ['customer_id', 'sku', 'ts', 'rating', 'type'], 'auto', 'f.csv');
    assert.deepEqual(m.columns, { user: 'customer_id', item: 'sku', time: 'ts', type: 'type', value: 'rating' });
    assert.equal(describeMapping(m), 'user=customer_id, item=sku, time=ts (auto), type=type, value=rating');
    const canonical = resolveMapping({}, ['eventId', 'userId', 'itemId', 'type', 'value', 'timestampMs', 'context'], 'auto', 'f.jsonl');
    assert.equal(describeMapping(canonical), 'user=userId, item=itemId, time=timestampMs (epoch-ms), type=type, value=value, id=eventId');
    assert.throws(
      () => resolveMapping({ user: 'custmer_id' }, ['customer_id', 'item', 'time'], 'auto', 'f.csv'),
      (err: unknown) => code('MAPPING_COLUMN')(err) && /no column "custmer_id" \(columns: customer_id, item, time\); did you mean "customer_id"\?/.test((err as Error).message),
    );
    assert.throws(() => resolveMapping({}, ['user', 'item'], 'auto', 'f.csv'), /f\.csv has no time column \(columns: user, item\); name it with --map time=COLUMN/);
  });
});

describe('time formats', () => {
  const jan1 = Date.UTC(2024, 0, 1);
  it('epoch seconds (fractions too), epoch milliseconds, ISO 8601 with or without a zone (UTC)', () => {
    assert.equal(parseTime('1704067200', 'epoch-s'), jan1);
    assert.equal(parseTime('1704067200.25', 'epoch-s'), jan1 + 250);
    assert.equal(parseTime('1704067200000', 'epoch-ms'), jan1);
    assert.equal(parseTime('1704067200000.6', 'epoch-ms'), jan1 + 1, 'rounded to the millisecond');
    assert.equal(parseTime('2024-01-01T00:00:00Z', 'iso'), jan1);
    assert.equal(parseTime('2024-01-01 01:30', 'iso'), jan1 + 90 * 60_000);
    assert.equal(parseTime('2024-01-01T02:00:00.123456+02:00', 'iso'), jan1 + 123);
    assert.equal(parseTime('2024-01-01T02:00:00+0200', 'iso'), jan1);
    assert.equal(parseTime('2024-01-01', 'iso'), jan1);
  });

  it('auto: by size for numbers (10^11 and up is milliseconds), ISO 8601 for text', () => {
    assert.equal(parseTime('1704067200', 'auto'), jan1);
    assert.equal(parseTime('1704067200000', 'auto'), jan1);
    assert.equal(parseTime('2024-01-01T00:00:00Z', 'auto'), jan1);
  });

  it('says why a value is not a time', () => {
    assert.match(String(parseTime('yesterday', 'auto')), /"yesterday" is neither epoch seconds or milliseconds nor an ISO 8601 time/);
    assert.match(String(parseTime('2024-01-01', 'epoch-s')), /is not epoch seconds/);
    assert.match(String(parseTime('2024-13-45', 'iso')), /not a valid date/);
    assert.match(String(parseTime('0', 'epoch-s')), /not a time after 1970/);
  });
});

describe('a row through the map', () => {
  const mapping = resolveMapping({ user: 'c', item: 's', time: 't' }, ['c', 's', 't', 'type', 'rating'], 'epoch-s', 'f.csv');

  it('makes an interaction: trimmed ids, type lower-cased, value a number, id from file and line', () => {
    const row = mapRow({ c: ' c1 ', s: 's9', t: '1704067200', type: 'Purchase', rating: '4.5' }, mapping, 7, 'orders');
    assert.deepEqual(row, {
      ok: true,
      interaction: { eventId: 'orders:7', userId: 'c1', itemId: 's9', type: 'purchase', value: 4.5, timestampMs: Date.UTC(2024, 0, 1), context: {} },
    });
    const plain = mapRow({ c: 1, s: 2, t: 1704067200, type: '', rating: '' }, mapping, 8, 'orders');
    assert.ok(plain.ok);
    assert.deepEqual([plain.interaction.userId, plain.interaction.itemId, plain.interaction.type, plain.interaction.value], ['1', '2', 'view', null]);
  });

  it('names the field, the column and the value that is wrong', () => {
    const bad = (values: Record<string, unknown>): string => {
      const row = mapRow({ c: 'c1', s: 's1', t: '1704067200', ...values }, mapping, 2, 'f');
      assert.equal(row.ok, false);
      return (row as { error: string }).error;
    };
    assert.equal(bad({ c: '' }), 'user (column c) is empty');
    assert.equal(bad({ s: undefined }), 'item (column s) is empty');
    assert.match(bad({ t: 'soon' }), /^time \(column t\) "soon" is not epoch seconds/);
    assert.match(bad({ type: 'like' }), /^type \(column type\) "like" is not one of view, click/);
    assert.match(bad({ rating: 'five' }), /^value \(column rating\) "five" is not a number/);
    assert.match(bad({ c: { id: 1 } }), /^user \(column c\) is object/);
  });
});
