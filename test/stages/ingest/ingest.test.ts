import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Interaction } from '../../../src/domain/events.ts';
import { createCodecs } from '../../../src/eventlog/codec/avro.ts';
import type { LogRecord } from '../../../src/eventlog/port.ts';
import { BadInputError, FatalError, TransientError } from '../../../src/errors/index.ts';
import { confluentFraming, headerFraming, SCHEMA_HEADER, schemaHeaderValue } from '../../../src/eventlog/codec/framing.ts';
import { ingest, type InteractionDecoder } from '../../../src/stages/ingest/index.ts';
import type { ValidationLimits } from '../../../src/stages/ingest/validate.ts';

const codecs = createCodecs();
const NOW = 1_750_000_000_000;
const LIMITS: ValidationLimits = { nowMs: NOW, maxEventAgeMs: 0, maxFutureSkewMs: 300_000 };
const avroDecode: InteractionDecoder = (record) => codecs.interaction.decode(record.value);
/** A decoder that trusts JSON, to hand the validator values Avro itself would refuse to encode. */
const jsonDecode: InteractionDecoder = (record) => JSON.parse(record.value.toString('utf8')) as Interaction;

function event(overrides: Partial<Interaction> = {}): Interaction {
  return {
    eventId: 'e1',
    userId: 'u1',
    itemId: 'i1',
    type: 'click',
    value: null,
    timestampMs: NOW - 60_000,
    context: { session: 's1' },
    ...overrides,
  };
}

let offset = 0;
function record(value: Buffer, key: string | Buffer | null = 'u1', partition = 2): LogRecord {
  return {
    topic: 'starstream.interactions',
    partition,
    offset: String(offset++),
    key: typeof key === 'string' ? Buffer.from(key) : key,
    value,
    headers: {},
    timestampMs: NOW,
  };
}

const avroRecord = (e: Interaction, key: string | null = e.userId): LogRecord => record(codecs.interaction.encode(e), key);
const jsonRecord = (e: unknown, key: string | null = 'u1'): LogRecord => record(Buffer.from(JSON.stringify(e)), key);

async function deadLetterOf(rec: LogRecord, decode: InteractionDecoder = avroDecode, limits: ValidationLimits = LIMITS) {
  const result = await ingest([rec], decode, limits);
  assert.equal(result.interactions.length, 0, 'the record is not accepted');
  assert.equal(result.deadLetters.length, 1);
  const letter = result.deadLetters[0]!;
  // Whatever went wrong, the letter keeps the original bytes, the key and where the record came from.
  assert.ok(Buffer.from(letter.payload).equals(rec.value), 'original bytes');
  assert.deepEqual(letter.key === null ? null : Buffer.from(letter.key), rec.key);
  assert.deepEqual(letter.source, { topic: rec.topic, partition: rec.partition, offset: rec.offset });
  assert.equal(letter.failedAtMs, limits.nowMs);
  assert.ok(letter.reason.length > 0);
  return letter;
}

describe('ingest: valid events', () => {
  it('passes valid events through unchanged, in order', async () => {
    const events = [
      event(),
      event({ eventId: 'e2', type: 'rating', value: 4 }),
      event({ eventId: 'e3', type: 'purchase', value: 0, context: {} }),
      event({ eventId: 'e4', userId: 'ü-ser 🎧', itemId: 'i/2', timestampMs: 1 }),
    ];
    const { interactions, deadLetters } = await ingest(events.map((e) => avroRecord(e)), avroDecode, LIMITS);
    assert.deepEqual(deadLetters, []);
    assert.deepEqual(interactions.map((e) => ({ ...e, context: { ...e.context } })), events);
  });

  it('accepts limits at their exact boundary', async () => {
    const limits = { ...LIMITS, maxEventAgeMs: 3_600_000 };
    const { interactions } = await ingest(
      [
        avroRecord(event()),
        avroRecord(event({ eventId: 'future', timestampMs: NOW + LIMITS.maxFutureSkewMs })),
        avroRecord(event({ eventId: 'old', timestampMs: NOW - limits.maxEventAgeMs })),
        jsonRecord(event({ eventId: 'x'.repeat(256), context: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v'.repeat(1024)])) })),
      ],
      (r) => (r.value[0] === 0x7b ? jsonDecode(r) : avroDecode(r)),
      limits,
    );
    assert.equal(interactions.length, 4);
  });

  it('accepts very old events when maxEventAgeMs is 0 (replays)', async () => {
    const { interactions } = await ingest([avroRecord(event({ timestampMs: Date.UTC(2001, 0, 1) }))], avroDecode, LIMITS);
    assert.equal(interactions.length, 1);
  });
});

describe('ingest: each malformed kind becomes a dead letter with its code', () => {
  const cases: { name: string; rec: () => LogRecord; code: string; decode?: InteractionDecoder; limits?: ValidationLimits }[] = [
    { name: 'undecodable bytes', rec: () => record(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x05])), code: 'UNDECODABLE' },
    { name: 'truncated Avro', rec: () => record(codecs.interaction.encode(event()).subarray(0, 10)), code: 'UNDECODABLE' },
    { name: 'empty bytes', rec: () => record(Buffer.alloc(0)), code: 'UNDECODABLE' },
    { name: 'an empty eventId', rec: () => avroRecord(event({ eventId: '' })), code: 'MISSING_ID' },
    { name: 'an empty userId', rec: () => avroRecord(event({ userId: '' }), null), code: 'MISSING_ID' },
    { name: 'an empty itemId', rec: () => avroRecord(event({ itemId: '' })), code: 'MISSING_ID' },
    { name: 'a newline in the userId', rec: () => avroRecord(event({ userId: 'u1\nadmin' }), null), code: 'BAD_ID' },
    { name: 'a NUL in the itemId', rec: () => avroRecord(event({ itemId: 'i\u00001' })), code: 'BAD_ID' },
    { name: 'a DEL in the eventId', rec: () => avroRecord(event({ eventId: 'e\u007f' })), code: 'BAD_ID' },
    { name: 'an id over 256 characters', rec: () => avroRecord(event({ itemId: 'i'.repeat(257) })), code: 'BAD_ID' },
    { name: 'an unknown event type', rec: () => jsonRecord({ ...event(), type: 'share' }), code: 'UNKNOWN_EVENT_TYPE', decode: jsonDecode },
    { name: 'a NaN value', rec: () => avroRecord(event({ value: Number.NaN })), code: 'NON_FINITE_VALUE' },
    { name: 'an infinite value', rec: () => avroRecord(event({ value: Number.POSITIVE_INFINITY })), code: 'NON_FINITE_VALUE' },
    { name: 'a -Infinity value', rec: () => avroRecord(event({ value: Number.NEGATIVE_INFINITY })), code: 'NON_FINITE_VALUE' },
    { name: 'a zero timestamp', rec: () => avroRecord(event({ timestampMs: 0 })), code: 'TIMESTAMP_OUT_OF_RANGE' },
    { name: 'a negative timestamp', rec: () => avroRecord(event({ timestampMs: -5 })), code: 'TIMESTAMP_OUT_OF_RANGE' },
    { name: 'a fractional timestamp', rec: () => jsonRecord({ ...event(), timestampMs: NOW - 0.5 }), code: 'TIMESTAMP_OUT_OF_RANGE', decode: jsonDecode },
    {
      name: 'a timestamp too far in the future',
      rec: () => avroRecord(event({ timestampMs: NOW + LIMITS.maxFutureSkewMs + 1 })),
      code: 'TIMESTAMP_OUT_OF_RANGE',
    },
    {
      name: 'a timestamp older than maxEventAgeMs',
      rec: () => avroRecord(event({ timestampMs: NOW - 86_400_001 })),
      code: 'TIMESTAMP_OUT_OF_RANGE',
      limits: { ...LIMITS, maxEventAgeMs: 86_400_000 },
    },
    {
      name: 'a context with too many entries',
      rec: () => avroRecord(event({ context: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) })),
      code: 'CONTEXT_TOO_LARGE',
    },
    { name: 'a context value over 1024 characters', rec: () => avroRecord(event({ context: { note: 'x'.repeat(1025) } })), code: 'CONTEXT_TOO_LARGE' },
    { name: 'a key that is not the userId', rec: () => avroRecord(event(), 'u2'), code: 'KEY_MISMATCH' },
    // Issue 16: a key-less record sat on a partition chosen round-robin, and its recommendation went out
    // under the value's user id from an instance that does not own that user.
    { name: 'a valid event without a key', rec: () => avroRecord(event(), null), code: 'KEY_MISSING' },
    {
      name: 'an async decoder that rejects with bad input',
      rec: () => avroRecord(event()),
      code: 'UNKNOWN_SCHEMA',
      decode: async () => {
        throw new BadInputError('UNKNOWN_SCHEMA', 'unregistered schema id 7');
      },
    },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.code}`, async () => {
      const letter = await deadLetterOf(c.rec(), c.decode, c.limits);
      assert.equal(letter.code, c.code, letter.reason);
    });
  }

  it('keeps going after bad records: a mixed batch splits into accepted events and letters', async () => {
    const recs = [
      avroRecord(event({ eventId: 'a' })),
      record(Buffer.from('garbage')),
      avroRecord(event({ eventId: 'b', value: Number.NaN })),
      avroRecord(event({ eventId: 'c' })),
      avroRecord(event({ eventId: 'd' }), 'someone-else'),
    ];
    const { interactions, deadLetters } = await ingest(recs, avroDecode, LIMITS);
    assert.deepEqual(interactions.map((e) => e.eventId), ['a', 'c']);
    assert.deepEqual(deadLetters.map((l) => [l.source.offset, l.code]), [
      [recs[1]!.offset, 'UNDECODABLE'],
      [recs[2]!.offset, 'NON_FINITE_VALUE'],
      [recs[4]!.offset, 'KEY_MISMATCH'],
    ]);
  });
});

describe('ingest: only bad input is dead-lettered (issue 16)', () => {
  const good = (): LogRecord[] => [avroRecord(event({ eventId: 'a' })), avroRecord(event({ eventId: 'b' }))];
  /** Fails every decode after the first with `err`, like a registry that goes away in the middle of a batch. */
  const failingAfterFirst = (err: unknown): InteractionDecoder => {
    let calls = 0;
    return (rec) => {
      if (calls++ > 0) throw err;
      return avroDecode(rec);
    };
  };

  it('a transient error (schema registry 5xx) rejects the batch as is, so the consumer redelivers it', async () => {
    const err = new TransientError('SCHEMA_REGISTRY_UNAVAILABLE', 'schema registry GET /schemas/ids/1: HTTP 503');
    await assert.rejects(ingest(good(), failingAfterFirst(err), LIMITS), (thrown) => thrown === err);
  });

  it('a fatal error (registry refuses the credentials) rejects the batch as is, so the consumer stops', async () => {
    const err = new FatalError('SCHEMA_REGISTRY_AUTH', 'schema registry GET /schemas/ids/1: HTTP 401');
    await assert.rejects(ingest(good(), failingAfterFirst(err), LIMITS), (thrown) => thrown === err);
  });

  for (const [name, bug] of [
    ['a TypeError', new TypeError('boom')],
    ['a thrown string', 'not an Error'],
  ] as const) {
    it(`an unclassified decoder error (${name}) is a bug: FatalError INGEST_UNCLASSIFIED, the original as cause`, async () => {
      const records = good();
      await assert.rejects(ingest(records, failingAfterFirst(bug), LIMITS), (thrown: unknown) => {
        assert.ok(thrown instanceof FatalError);
        assert.equal(thrown.code, 'INGEST_UNCLASSIFIED');
        assert.equal(thrown.cause, bug);
        assert.match(thrown.message, new RegExp(`@${records[1]!.offset}:`));
        return true;
      });
    });
  }

  it('a decoder that returns nothing is a bug too, not bad input', async () => {
    await assert.rejects(ingest(good(), () => null as unknown as Interaction, LIMITS), { code: 'INGEST_UNCLASSIFIED' });
  });

  it('the real decoders classify garbage as bad input: header and Confluent framing, any bytes', async () => {
    const header = headerFraming();
    const confluent = confluentFraming({
      register: async () => 1,
      schemaById: async () => JSON.stringify(codecs.interaction.type.schema()),
    });
    const garbage = [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 0, 0, 0, 1, 0xff, 0xff]), Buffer.from('{"eventId":"e1"}'), Buffer.alloc(64, 0xff)];
    for (const framing of [header, confluent]) {
      const decode: InteractionDecoder = (rec) => framing.decode(codecs.interaction, rec.value, rec.headers);
      const { deadLetters } = await ingest(garbage.map((bytes) => record(bytes)), decode, LIMITS);
      assert.deepEqual(deadLetters.map((l) => l.code), garbage.map(() => 'UNDECODABLE'), framing.kind);
    }
  });
});

describe('ingest: the dead letter keeps the record as it was (issue 16)', () => {
  it('keeps the original headers, starstream-schema included', async () => {
    const headers = { [SCHEMA_HEADER]: Buffer.from(schemaHeaderValue(codecs.interaction)), trace: Buffer.from([0, 0xff]) };
    const rec = { ...avroRecord(event({ itemId: '' })), headers };
    const letter = await deadLetterOf(rec);
    assert.deepEqual(letter.headers, headers);
    assert.equal(letter.payloadNull, false);
  });

  it('tells a null value (tombstone) from an empty one', async () => {
    const empty = await deadLetterOf(record(Buffer.alloc(0)));
    const tombstone = await deadLetterOf({ ...record(Buffer.alloc(0)), valueIsNull: true });
    assert.equal(empty.payloadNull, false);
    assert.equal(tombstone.payloadNull, true);
  });
});

describe('ingest: property', () => {
  // Full 8-bit bytes: huge varints and block counts included, which the decoder's bounds check must reject
  // fast (see 'rejects a tiny record that claims a huge map block quickly').
  const valid = (i: number): Interaction =>
    event({
      eventId: `e${i}`,
      userId: `u${i % 7}`,
      itemId: `i${i % 11}`,
      type: i % 2 ? 'view' : 'rating',
      value: i % 2 ? null : 3,
      timestampMs: 1 + (i % 60),
      context: i % 3 ? {} : { session: `s${i % 5}` },
    });
  const anyByte = fc.integer({ min: 0, max: 255 });

  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(anyByte, { minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant('key' as const), key: fc.option(fc.string({ maxLength: 4 }), { nil: null }) }),
  );

  const input = fc.array(
    fc.oneof(
      fc.array(anyByte, { maxLength: 64 }).map((bytes) => ({ kind: 'bytes' as const, bytes })),
      fc.record({ kind: fc.constant('mutated' as const), i: fc.nat({ max: 1000 }), mutations: fc.array(mutation, { maxLength: 3 }) }),
    ),
    { maxLength: 30 },
  );
  type Spec = typeof input extends fc.Arbitrary<(infer T)[]> ? T : never;

  function build(spec: Spec, index: number): LogRecord {
    if (spec.kind === 'bytes') return record(Buffer.from(spec.bytes), index % 3 ? `u${index % 7}` : null, index % 4);
    const e = valid(spec.i);
    let bytes = Buffer.from(codecs.interaction.encode(e));
    assert.ok(bytes.every((b) => b < 0x80), 'valid records are 7-bit');
    let key: string | null = e.userId;
    for (const m of spec.mutations) {
      if (m.kind === 'flip' && bytes.length > 0) {
        bytes = Buffer.from(bytes);
        bytes[m.at % bytes.length] = bytes[m.at % bytes.length]! ^ m.bits;
      } else if (m.kind === 'truncate') bytes = bytes.subarray(0, m.at % (bytes.length + 1));
      else if (m.kind === 'insert') {
        const at = m.at % (bytes.length + 1);
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(m.bytes), bytes.subarray(at)]);
      } else if (m.kind === 'key') key = m.key;
    }
    return record(bytes, key, index % 4);
  }

  it('accounts for every record exactly once and never throws (arbitrary bytes, mutated records)', async () => {
    let accepted = 0;
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(input, async (specs) => {
        const records = specs.map((s, i) => build(s, i));
        const { interactions, deadLetters } = await ingest(records, avroDecode, LIMITS);
        assert.equal(interactions.length + deadLetters.length, records.length);
        accepted += interactions.length;
        rejected += deadLetters.length;
        // Dead letters point at distinct input records, in input order, with their bytes.
        const offsets = records.map((r) => r.offset);
        let last = -1;
        for (const letter of deadLetters) {
          const index = offsets.indexOf(letter.source.offset);
          assert.ok(index > last, 'in input order');
          last = index;
          assert.ok(Buffer.from(letter.payload).equals(records[index]!.value));
          assert.notEqual(letter.code, 'INTERNAL', `bad input is classified: ${letter.reason}`);
        }
        // Whatever passed is valid.
        for (const e of interactions) {
          assert.ok(e.eventId.length > 0 && e.userId.length > 0 && e.itemId.length > 0);
          assert.ok(e.value === null || Number.isFinite(e.value));
          assert.ok(Number.isSafeInteger(e.timestampMs) && e.timestampMs > 0 && e.timestampMs <= NOW + LIMITS.maxFutureSkewMs);
        }
      }),
      { numRuns: 300, seed: 20261125 },
    );
    assert.ok(accepted > 0 && rejected > 0, `both outcomes were exercised (${accepted} accepted, ${rejected} rejected)`);
  });

  // This was a wall-clock bound (< 100 ms) that a loaded machine could break; what keeps the decode short is
  // that the bounds guard refuses the claim before avsc loops over it, and that is what is asserted.
  it('rejects a tiny record that claims a huge map block before decoding it', async () => {
    const base = codecs.interaction.encode(event({ eventId: 'e', userId: 'u', itemId: 'i', context: {} }));
    const count = 10_000_000;
    // zigzag varint of `count`, replacing the empty map's terminating 0
    const varint: number[] = [];
    for (let z = count * 2; ; z = Math.floor(z / 128)) {
      if (z < 128) {
        varint.push(z);
        break;
      }
      varint.push((z % 128) | 0x80);
    }
    const poison = Buffer.concat([base.subarray(0, base.length - 1), Buffer.from(varint)]);
    assert.ok(poison.length < 40);
    const letter = await deadLetterOf(record(poison, 'u'));
    assert.equal(letter.code, 'UNDECODABLE');
    // The guard's words (src/eventlog/codec/guard.ts): avsc never saw the 10M-entry claim.
    assert.match(letter.reason, new RegExp(`a block claims ${count} items with \\d+ bytes left`));
  });
});
