import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRequire } from 'node:module';
import avro from 'avsc';
import fc from 'fast-check';
import type { Interaction } from '../../src/domain/events.ts';
import { SAMPLING_REASONS } from '../../src/domain/teacher.ts';
import { BadInputError, StarstreamError } from '../../src/errors/index.ts';
import { createCodecs, SCHEMA_NAMES, type Codec, type Codecs, type SchemaName } from '../../src/eventlog/codec/avro.ts';
import { confluentFraming, headerFraming, SCHEMA_HEADER, schemaHeaderValue } from '../../src/eventlog/codec/framing.ts';
import { createSchemaRegistryClient, type SchemaRegistryClient } from '../../src/eventlog/codec/registry.ts';
import { expectTaxonomy, fuzz, fuzzAsync, hostileText } from './fuzz.ts';

/**
 * Hostile bytes against every Avro codec (one per schema in schemas/) and against both framings.
 * Contract: a decoder returns a valid value of its schema or throws `BadInputError` (UNDECODABLE or
 * UNKNOWN_SCHEMA), within a bounded time whatever lengths the bytes claim.
 */

const codecs = createCodecs();
const CODEC_OF: Record<SchemaName, Codec<unknown>> = {
  interaction: codecs.interaction,
  item: codecs.item,
  recommendation: codecs.recommendation,
  'dead-letter': codecs.deadLetter,
  'item-delta': codecs.itemDeltas,
  'teacher-case': codecs.teacherCase,
} satisfies Record<SchemaName, Codec<unknown>> as Record<SchemaName, Codec<unknown>>;

/**
 * Reads from the input allowed per byte of it (plus one). A decode's work is the number of values avsc reads
 * off its buffer (`Tap` reads and skips: every varint, string, float, …). A guarded decode reads each byte
 * about once, so a few reads per byte is plenty; a block claiming 2^40 items makes 2^40 reads. Counting reads
 * keeps "within a bounded time" a property of the code, where a wall-clock bound (it was 250 ms) failed on a
 * loaded machine.
 */
const READS_PER_BYTE = 4;

/** Reads off avsc buffers since the counter was last reset (this process's avsc, wrapped below). */
const reads = { count: 0 };

{
  // avsc exposes no hook for this; its Tap is the one object every decode reads through (types.js takes it
  // from utils.js, the same module instance). Primitive types are frozen, so wrapping their readers is not
  // an option.
  const { Tap } = createRequire(import.meta.url)('avsc/lib/utils.js') as { Tap: { prototype: Record<string, unknown> } };
  for (const name of Object.keys(Tap.prototype)) {
    const method = Tap.prototype[name];
    if (!/^(read|skip)/.test(name) || typeof method !== 'function') continue;
    Tap.prototype[name] = function (this: unknown, ...args: unknown[]) {
      reads.count++;
      return (method as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Values of an Avro type, built from the type itself so every schema (present and future) is covered.
 * `wellFormed` keeps strings valid Unicode (they round-trip through UTF-8 exactly); `fields` overrides
 * the values of `Record.field`.
 */
function valueOf(type: avro.Type, options: { wellFormed: boolean; fields?: Record<string, fc.Arbitrary<unknown>> }): fc.Arbitrary<unknown> {
  const name = type.typeName;
  if (name.startsWith('union')) {
    const branches = (type as avro.types.UnwrappedUnionType).types;
    return fc.oneof(...branches.map((b) => valueOf(b, options)));
  }
  switch (name) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'int':
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case 'long':
      // avsc encodes longs through doubles: a negative long below -2^52 is written wrong (its zig-zag form is
      // odd and past 2^53). No field of ours carries such values (timestamps are ~2^40, ingest refuses ≤ 0).
      return fc.oneof(fc.integer({ min: -(2 ** 52), max: 2 ** 53 - 2 }), fc.constantFrom(0, -1, 2 ** 53 - 2, -(2 ** 52)));
    case 'float':
      return fc.float();
    case 'double':
      // NaN, ±Infinity and -0 included: Avro carries them, the stages after decoding must cope.
      return fc.double();
    case 'string': {
      const text = fc.oneof(fc.string({ maxLength: 20 }), hostileText(6));
      return options.wellFormed ? text.map((s) => s.replace(LONE_SURROGATE, '\uFFFD')) : text;
    }
    case 'bytes':
      return fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
    case 'enum':
      return fc.constantFrom(...(type as avro.types.EnumType).symbols);
    case 'array':
      return fc.array(valueOf((type as avro.types.ArrayType).itemsType, options), { maxLength: 4 });
    case 'map':
      return fc.dictionary(fc.string({ maxLength: 8 }), valueOf((type as avro.types.MapType).valuesType, options), { maxKeys: 4 });
    case 'record': {
      const record = type as avro.types.RecordType;
      const shape: Record<string, fc.Arbitrary<unknown>> = {};
      for (const field of record.fields) {
        shape[field.name] = options.fields?.[`${record.name ?? ''}.${field.name}`] ?? valueOf(field.type, options);
      }
      return fc.record(shape);
    }
    default:
      throw new Error(`no arbitrary for Avro type ${name}`);
  }
}

const FIELD_OVERRIDES: Record<string, fc.Arbitrary<unknown>> = {
  // The codec checks `reason` against the known sampling reasons (a string on the wire).
  'starstream.v1.TeacherCase.reason': fc.constantFrom(...SAMPLING_REASONS),
};

/** A decoded value as plain data (avsc returns instances of generated record classes). */
function plain(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return Buffer.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

function zigzag(n: bigint): number[] {
  let z = n >= 0n ? n * 2n : -n * 2n - 1n;
  const out: number[] = [];
  for (;;) {
    if (z < 128n) {
      out.push(Number(z));
      return out;
    }
    out.push(Number(z % 128n) | 0x80);
    z /= 128n;
  }
}

/** Lengths and counts an attacker claims: past the buffer, past 2^31, 2^53, negative, and overlong varints. */
const hugeVarint = fc.oneof(
  fc.constantFrom(2n ** 31n, 2n ** 32n + 1n, 2n ** 40n, 2n ** 53n, 2n ** 62n, -(2n ** 40n), -1n, 1_000_000n).map(zigzag),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(zigzag),
  fc.constant([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
);

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }).map((a) => [...a]) }),
  fc.record({ kind: fc.constant('huge' as const), at: fc.nat(), bytes: hugeVarint }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), bytes: hugeVarint }),
  // Bytes that are not UTF-8 where a string's bytes were: overlong forms, lone continuation bytes, surrogates.
  fc.record({
    kind: fc.constant('notUtf8' as const),
    at: fc.nat(),
    bytes: fc.constantFrom([0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x28, 0xa1]),
  }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(bytes: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(bytes);
  for (const m of mutations) {
    const at = m.at % (b.length + 1);
    switch (m.kind) {
      case 'flip':
        if (b.length > 0) b[m.at % b.length] = b[m.at % b.length]! ^ m.bits;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
      case 'huge':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      case 'replace':
      case 'notUtf8':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(Math.min(b.length, at + m.bytes.length))]);
        break;
    }
  }
  return b;
}

/** Decodes and checks the contract; returns the value or null when the bytes were refused. */
function decodeChecked(codec: Codec<unknown>, bytes: Buffer): unknown {
  reads.count = 0;
  let value: unknown = null;
  try {
    value = codec.decode(bytes);
  } catch (err) {
    expectTaxonomy(err, { family: 'bad-input', codes: ['UNDECODABLE'], type: BadInputError });
  }
  assert.ok(reads.count <= READS_PER_BYTE * (bytes.length + 1), `decoding ${bytes.length} bytes made ${reads.count} reads`);
  if (value !== null) assert.ok(codec.type.isValid(value), 'a decoded value is a valid value of its schema');
  return value;
}

describe('fuzz: Avro codecs (every schema in schemas/)', () => {
  it('covers every schema file', () => {
    assert.deepEqual(Object.keys(CODEC_OF).sort(), [...SCHEMA_NAMES].sort());
  });

  for (const [i, name] of SCHEMA_NAMES.entries()) {
    const codec = CODEC_OF[name];
    const valid = valueOf(codec.type, { wellFormed: true, fields: FIELD_OVERRIDES });

    it(`${name}: valid values (NaN, ±Infinity, control characters, odd Unicode) round-trip`, () => {
      fuzz(
        fc.property(valid, (value) => {
          const decoded = codec.decode(codec.encode(value));
          assert.deepEqual(plain(decoded), plain(value));
        }),
        { seed: 9100 + i, numRuns: 100 },
      );
    });

    it(`${name}: random bytes decode to a valid value or a BadInputError, quickly`, () => {
      fuzz(
        fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
          decodeChecked(codec, Buffer.from(bytes));
        }),
        { seed: 9200 + i, numRuns: 300 },
      );
    });

    it(`${name}: truncated, bit-flipped, spliced records and huge claimed lengths: a value or a BadInputError, quickly`, () => {
      fuzz(
        fc.property(valid, fc.array(mutation, { minLength: 1, maxLength: 3 }), (value, mutations) => {
          const encoded = codec.encode(value);
          const bytes = mutate(encoded, mutations);
          decodeChecked(codec, bytes);
          // A strict prefix of a record is never a record.
          if (bytes.length < encoded.length && encoded.subarray(0, bytes.length).equals(bytes)) {
            assert.throws(() => codec.decode(bytes), BadInputError);
          }
        }),
        { seed: 9300 + i, numRuns: 300 },
      );
    });
  }

  it('teacher-case: an unknown sampling reason is bad input, not a value', () => {
    const type = codecs.teacherCase.type;
    const anyReason = valueOf(type, { wellFormed: true, fields: { 'starstream.v1.TeacherCase.reason': fc.string({ maxLength: 30 }) } });
    fuzz(
      fc.property(anyReason, (value) => {
        const bytes = type.toBuffer(value);
        const reason = (value as { reason: string }).reason;
        if ((SAMPLING_REASONS as readonly string[]).includes(reason)) return;
        assert.throws(() => codecs.teacherCase.decode(bytes), (err) => expectTaxonomy(err, { family: 'bad-input', codes: ['UNDECODABLE'] }) !== null);
      }),
      { seed: 9400, numRuns: 100 },
    );
  });
});

/** An in-memory registry: the ids it knows, 404 (UNKNOWN_SCHEMA) for any other, as the real client answers. */
function fakeRegistry(c: Codecs): { registry: SchemaRegistryClient; ids: Map<number, string> } {
  const ids = new Map<number, string>();
  let next = 1;
  for (const codec of [c.interaction, c.item, c.recommendation, c.deadLetter, c.itemDeltas, c.teacherCase]) ids.set(next++, JSON.stringify(codec.type.schema()));
  ids.set(90, '{"type": "record", "name": "Broken", "fields": [{"name": "x", "type": "nope"}]}');
  ids.set(91, 'not json at all');
  ids.set(92, JSON.stringify({ type: 'record', name: 'Interaction', namespace: 'starstream.v1', fields: [{ name: 'eventId', type: 'int' }] }));
  return {
    ids,
    registry: {
      register: async () => 1,
      schemaById: async (id) => {
        const schema = ids.get(id);
        if (schema === undefined) throw new BadInputError('UNKNOWN_SCHEMA', `schema registry GET /schemas/ids/${id}: HTTP 404`);
        return schema;
      },
    },
  };
}

describe('fuzz: framing (schema header, Confluent wire format)', () => {
  const interaction = codecs.interaction;
  const validInteraction = valueOf(interaction.type, { wellFormed: true }) as fc.Arbitrary<Interaction>;
  const codes = ['UNDECODABLE', 'UNKNOWN_SCHEMA'];

  it('header framing: missing, garbage or foreign schema headers give a value or a BadInputError', async () => {
    const older = avro.Type.forSchema({ ...(interaction.type.schema() as avro.schema.RecordType), fields: (interaction.type.schema() as avro.schema.RecordType).fields.filter((f) => f.name !== 'context') });
    const framing = headerFraming({ writers: [older, codecs.item.type] });
    const headerValue = fc.oneof(
      fc.constant(undefined),
      fc.constantFrom(schemaHeaderValue(interaction), schemaHeaderValue(codecs.item), `${older.name}@deadbeefdeadbeef`, '', '@', 'starstream.v1.Interaction@'),
      hostileText(5),
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a).toString('latin1')),
    );
    await fuzzAsync(
      fc.asyncProperty(validInteraction, fc.array(mutation, { maxLength: 2 }), headerValue, async (value, mutations, header) => {
        const bytes = mutate(interaction.encode(value), mutations);
        const headers: Record<string, Buffer> = header === undefined ? {} : { [SCHEMA_HEADER]: Buffer.from(header, 'latin1') };
        try {
          const decoded = await framing.decode(interaction, bytes, headers);
          assert.ok(interaction.type.isValid(decoded));
        } catch (err) {
          expectTaxonomy(err, { family: 'bad-input', codes });
        }
      }),
      { seed: 9500, numRuns: 300 },
    );
  });

  it('Confluent framing: no magic byte, unknown ids, broken or foreign registry schemas give a value or a BadInputError', async () => {
    const { registry } = fakeRegistry(codecs);
    const framing = confluentFraming(registry);
    const id = fc.oneof(fc.constantFrom(0, 1, 2, 90, 91, 92, 2 ** 32 - 1), fc.nat());
    const prefix = fc.oneof(
      id.map((n) => {
        const p = Buffer.alloc(5);
        p.writeUInt32BE(n >>> 0, 1);
        return p;
      }),
      fc.uint8Array({ maxLength: 6 }).map((a) => Buffer.from(a)),
    );
    await fuzzAsync(
      fc.asyncProperty(prefix, validInteraction, fc.array(mutation, { maxLength: 2 }), async (head, value, mutations) => {
        const bytes = Buffer.concat([head, mutate(interaction.encode(value), mutations)]);
        try {
          const decoded = await framing.decode(interaction, bytes, {});
          assert.ok(interaction.type.isValid(decoded));
        } catch (err) {
          expectTaxonomy(err, { family: 'bad-input', codes });
        }
      }),
      { seed: 9600, numRuns: 300 },
    );
  });

  const REGISTRY_CODES = ['UNKNOWN_SCHEMA', 'SCHEMA_REGISTRY_UNAVAILABLE', 'SCHEMA_REGISTRY_AUTH', 'SCHEMA_INCOMPATIBLE', 'SCHEMA_INVALID', 'SCHEMA_REGISTRY_ERROR'];

  it('the registry client classifies every answer (any status, any body) into the taxonomy', async () => {
    const answer = fc.record({
      status: fc.oneof(fc.constantFrom(200, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503), fc.integer({ min: 200, max: 599 })),
      body: fc.oneof(
        fc.constant(''),
        fc.json({ maxDepth: 3 }),
        fc.constantFrom('{"schema": 5}', '{"id": "7"}', '{"id": 7}', '{"schema": "{}"}', '<html>', 'null', '[]', '{"message": "x"}'),
        fc.string({ maxLength: 40 }),
      ),
      throws: fc.boolean(),
    });
    await fuzzAsync(
      fc.asyncProperty(answer, fc.nat({ max: 10_000 }), async ({ status, body, throws }, id) => {
        const fetchStub: typeof fetch = async () => {
          if (throws) throw new TypeError('fetch failed');
          return new Response(status === 204 ? null : body, { status });
        };
        const client = createSchemaRegistryClient({ url: 'http://user:secret@registry.invalid:8081', timeoutMs: 1_000, fetch: fetchStub });
        for (const call of [() => client.schemaById(id), () => client.register('t-value', '{"type":"string"}')]) {
          try {
            await call();
          } catch (err) {
            assert.ok(err instanceof StarstreamError, `a classified error, not ${String(err)}`);
            assert.ok(REGISTRY_CODES.includes(err.code), err.code);
            assert.ok(!err.message.includes('secret'), 'credentials of the registry URL never reach an error message');
          }
        }
      }),
      { seed: 9700, numRuns: 200 },
    );
  });
});

describe('regressions found by the fuzzing above', () => {
  it('an int field whose varint is wider than 32 bits is UNDECODABLE (avsc alone returned an unencodable value)', () => {
    const letter = { reason: 'r', code: 'C', sourceTopic: 't', sourcePartition: 3, sourceOffset: '1', key: null, payload: Buffer.alloc(0), failedAtMs: 1, payloadNull: false, headers: {}, truncated: false, payloadSize: null, payloadSha256: null };
    const bytes = codecs.deadLetter.encode(letter);
    // reason, code, sourceTopic are 1-byte lengths plus their text; sourcePartition's varint (3 → 0x06) follows.
    const at = bytes.indexOf(0x06, 2 + 2 + 2);
    const wide = Buffer.concat([bytes.subarray(0, at), Buffer.from(zigzag(2n ** 40n)), bytes.subarray(at + 1)]);
    assert.throws(() => codecs.deadLetter.decode(wide), (err) => expectTaxonomy(err, { family: 'bad-input', codes: ['UNDECODABLE'] }) !== null);
  });

  it('a schema registry answering 200 with `null` (or an array) is a classified error, not a TypeError', async () => {
    for (const body of ['null', '[]', '42']) {
      const client = createSchemaRegistryClient({ url: 'http://registry.invalid', timeoutMs: 1_000, fetch: async () => new Response(body, { status: 200 }) });
      await assert.rejects(client.schemaById(1), (err) => err instanceof StarstreamError && err.code === 'SCHEMA_REGISTRY_ERROR');
      await assert.rejects(client.register('s', '"string"'), (err) => err instanceof StarstreamError && err.code === 'SCHEMA_REGISTRY_ERROR');
    }
  });
});
