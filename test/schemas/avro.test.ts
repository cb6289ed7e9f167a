import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import avro from 'avsc';
import type { DeadLetter, Interaction, Item, RankedItem, Recommendation } from '../../src/domain/events.ts';
import { EVENT_TYPES } from '../../src/domain/events.ts';
import { createCodecs, readSchema, SCHEMA_NAMES, type DeadLetterRecord } from '../../src/eventlog/codec/avro.ts';
import { BadInputError } from '../../src/errors/index.ts';
import { schemaHeaderValue } from '../../src/eventlog/codec/framing.ts';
import type { TeacherCase } from '../../src/domain/teacher.ts';
import { teacherCase as buildTeacherCase } from '../teacher/case-fixtures.ts';
import { toRecord } from '../../src/pipeline/item-delta-records.ts';

/**
 * The schemas in `schemas/` and the compatibility rule of `schemas/README.md`, proven with Avro resolution
 * (avsc `createResolver`): what the rule allows resolves in both directions, what it forbids does not.
 */

const schemaDir = new URL('../../schemas/', import.meta.url);
const files = readdirSync(schemaDir).filter((f) => f.endsWith('.avsc')).sort();

interface RecordSchema {
  type: 'record';
  name: string;
  namespace?: string;
  fields: { name: string; type: unknown; default?: unknown }[];
}

function schemaOf(file: string): RecordSchema {
  return JSON.parse(readFileSync(new URL(file, schemaDir), 'utf8')) as RecordSchema;
}

const interaction: Interaction = {
  eventId: 'e1',
  userId: 'u1',
  itemId: 'i1',
  type: 'purchase',
  value: 19.99,
  timestampMs: 1_700_000_000_000,
  context: { session: 's1', device: 'phone' },
};
const item: Item = {
  itemId: 'i1',
  title: 'Trail shoes',
  categories: ['Hiking', 'Shoes'],
  description: null,
  attributes: { colour: 'red' },
  timestampMs: 1_700_000_000_000,
};
const rankedItem: RankedItem = { itemId: 'i2', score: 0.75, evidence: ['Co-occurs 3 times with 2 of your last 5 items.'] };
const recommendation: Recommendation = {
  eventId: 'e1',
  userId: 'u1',
  items: [rankedItem, { itemId: 'i3', score: -1.5, evidence: [] }],
  modelVersion: 'baseline-1',
  arm: 'challenger',
  generatedAtMs: 1_700_000_000_500,
  pipelineLatencyMs: 3.25,
};
const deadLetter: DeadLetter = {
  reason: 'not a starstream.v1.Interaction',
  code: 'UNDECODABLE',
  source: { topic: 'starstream.interactions', partition: 3, offset: '12345678901234567' },
  key: Buffer.from('u1'),
  payload: Buffer.from([0xde, 0xad, 0xbe, 0xef]),
  failedAtMs: 1_700_000_000_900,
};
const codecs = createCodecs();
const deadLetterRecord: DeadLetterRecord = codecs.deadLetterValue(deadLetter);
const itemDeltas = toRecord({
  itemId: 'i1',
  sourceTopic: 'starstream.interactions',
  sourcePartition: 3,
  changes: [
    {
      sourceOffset: '12345678901234567',
      delta: {
        itemId: 'i1',
        atMs: 1_700_000_000_000,
        initialVector: Float32Array.from([0.5, -0.25]),
        vectorDelta: Float32Array.from([0.125, 0]),
        seenBy: { id: 'u1', atMs: 1_700_000_000_000 },
        interactions: 1,
        cooccurrence: new Map([['i2', 1]]),
      },
    },
    { sourceOffset: '12345678901234568', delta: { itemId: 'i1', atMs: 1_700_000_000_001 } },
  ],
});

const teacherCase: TeacherCase = { ...buildTeacherCase('u1', 1_700_000_000_000, ['i2', 'i3']), reason: 'uncertain', margin: 0.0125 };

/** One sample value per schema file, written with the domain types. */
const samples: Record<string, unknown> = {
  'interaction.avsc': interaction,
  'item.avsc': item,
  'recommendation.avsc': recommendation,
  'dead-letter.avsc': deadLetterRecord,
  'teacher-case.avsc': teacherCase,
  'item-delta.avsc': itemDeltas,
};

/** A field of each type that a new schema version could add, with a default. */
const ADDED = { name: 'addedInV2', type: 'string', default: 'fallback' };

function withField(schema: RecordSchema, field: RecordSchema['fields'][number]): RecordSchema {
  return { ...schema, fields: [...schema.fields, field] };
}

function withoutField(schema: RecordSchema, name: string): RecordSchema {
  return { ...schema, fields: schema.fields.filter((f) => f.name !== name) };
}

function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (Buffer.isBuffer(v) ? { buffer: v.toString('hex') } : v)));
}

describe('schemas/*.avsc', () => {
  it('holds exactly the schemas the codecs know', () => {
    assert.deepEqual(files, SCHEMA_NAMES.map((n) => `${n}.avsc`).sort());
    assert.deepEqual(Object.keys(samples).sort(), files);
  });

  for (const file of files) {
    describe(file, () => {
      const schema = schemaOf(file);
      const type = avro.Type.forSchema(schema as avro.Schema);
      const sample = samples[file];

      it('parses, is a record in the starstream.v1 namespace, and round-trips a sample value', () => {
        assert.equal(schema.type, 'record');
        assert.equal(schema.namespace, 'starstream.v1');
        assert.ok(type.isValid(sample), `sample is valid for ${file}`);
        const decoded = type.fromBuffer(type.toBuffer(sample));
        assert.deepEqual(plain(decoded), plain(sample));
      });

      it('round-trips random values', () => {
        for (let i = 0; i < 20; i++) {
          const bytes = type.toBuffer(type.random());
          assert.ok(type.toBuffer(type.fromBuffer(bytes)).equals(bytes));
        }
      });

      it('a new field WITH a default: new readers read old data and old readers read new data', () => {
        const v2 = avro.Type.forSchema(withField(schema, ADDED) as avro.Schema);
        const oldData = type.toBuffer(sample);
        const readByNew = v2.fromBuffer(oldData, v2.createResolver(type)) as Record<string, unknown>;
        assert.equal(readByNew[ADDED.name], 'fallback');
        assert.deepEqual(plain({ ...readByNew, [ADDED.name]: undefined }), plain(sample));

        const newData = v2.toBuffer({ ...(sample as object), [ADDED.name]: 'written by v2' });
        const readByOld = type.fromBuffer(newData, type.createResolver(v2));
        assert.deepEqual(plain(readByOld), plain(sample));
      });

      it('a new field WITHOUT a default cannot read old data (the rule is Avro resolution, not convention)', () => {
        const { default: _dropped, ...noDefault } = ADDED;
        void _dropped;
        const v2 = avro.Type.forSchema(withField(schema, noDefault) as avro.Schema);
        assert.throws(() => v2.createResolver(type), /addedInV2|default|resolve|incompatible/i);
      });

      it('removing a field: allowed only if it had a default', () => {
        const withDefault = schema.fields.find((f) => 'default' in f);
        const required = schema.fields.find((f) => !('default' in f))!;
        if (withDefault) {
          const v2 = avro.Type.forSchema(withoutField(schema, withDefault.name) as avro.Schema);
          const newData = v2.toBuffer(sample);
          const readByOld = type.fromBuffer(newData, type.createResolver(v2)) as Record<string, unknown>;
          assert.deepEqual(plain(readByOld[withDefault.name]), plain(withDefault.default));
          // ...and the new reader still reads old data, skipping the field.
          assert.doesNotThrow(() => v2.fromBuffer(type.toBuffer(sample), v2.createResolver(type)));
        }
        const v2 = avro.Type.forSchema(withoutField(schema, required.name) as avro.Schema);
        assert.throws(() => type.createResolver(v2), `old readers cannot read data without ${required.name}`);
      });
    });
  }

  it('Interaction: the EventType default lets an old reader read a symbol added later', () => {
    const v1Schema = schemaOf('interaction.avsc');
    const v1 = avro.Type.forSchema(v1Schema as avro.Schema);
    const v2Schema = structuredClone(v1Schema);
    const typeField = v2Schema.fields.find((f) => f.name === 'type')!;
    const enumType = typeField.type as { symbols: string[]; default?: string };
    assert.equal(enumType.default, 'view');
    assert.deepEqual(enumType.symbols, [...EVENT_TYPES]);
    enumType.symbols = [...enumType.symbols, 'share'];
    const v2 = avro.Type.forSchema(v2Schema as avro.Schema);
    const data = v2.toBuffer({ ...interaction, type: 'share' });
    const read = v1.fromBuffer(data, v1.createResolver(v2)) as Interaction;
    assert.equal(read.type, 'view');
    assert.equal(read.eventId, interaction.eventId);

    // Without the enum default the same evolution breaks old readers.
    const strictSchema = structuredClone(v1Schema);
    delete (strictSchema.fields.find((f) => f.name === 'type')!.type as { default?: string }).default;
    const strict = avro.Type.forSchema(strictSchema as avro.Schema);
    assert.throws(() => strict.fromBuffer(data, strict.createResolver(v2)));
  });

  it('a type change other than Avro promotion does not resolve; int → long → double does', () => {
    const schema = schemaOf('dead-letter.avsc');
    const v1 = avro.Type.forSchema(schema as avro.Schema);
    const widen = (t: string): avro.Type =>
      avro.Type.forSchema({ ...schema, fields: schema.fields.map((f) => (f.name === 'sourcePartition' ? { ...f, type: t } : f)) } as avro.Schema);
    const asDouble = widen('double');
    const read = asDouble.fromBuffer(v1.toBuffer(deadLetterRecord), asDouble.createResolver(v1)) as DeadLetterRecord;
    assert.equal(read.sourcePartition, 3);
    assert.throws(() => widen('string').createResolver(v1));
  });
});

describe('src/domain/events.ts agrees with the schemas', () => {
  const fieldNames = (file: string): string[] => schemaOf(file).fields.map((f) => f.name).sort();

  it('Interaction, Item and Recommendation have exactly the schema fields', () => {
    assert.deepEqual(Object.keys(interaction).sort(), fieldNames('interaction.avsc'));
    assert.deepEqual(Object.keys(item).sort(), fieldNames('item.avsc'));
    assert.deepEqual(Object.keys(recommendation).sort(), fieldNames('recommendation.avsc'));
  });

  it('RankedItem matches the nested record', () => {
    const items = schemaOf('recommendation.avsc').fields.find((f) => f.name === 'items')!.type as { items: RecordSchema };
    assert.deepEqual(Object.keys(rankedItem).sort(), items.items.fields.map((f) => f.name).sort());
  });

  it('EVENT_TYPES are the EventType symbols', () => {
    const field = schemaOf('interaction.avsc').fields.find((f) => f.name === 'type')!;
    assert.deepEqual((field.type as { symbols: string[] }).symbols, [...EVENT_TYPES]);
  });

  it('dead-letter.avsc v1 (before headers, payloadNull, truncation) and the current one read each other (issue 16)', () => {
    const current = schemaOf('dead-letter.avsc');
    const added = ['payloadNull', 'headers', 'truncated', 'payloadSize', 'payloadSha256'];
    assert.ok(current.fields.filter((f) => added.includes(f.name)).every((f) => 'default' in f), 'new fields have defaults');
    const v1 = avro.Type.forSchema({ ...current, fields: current.fields.filter((f) => !added.includes(f.name)) } as avro.Schema);
    const v2 = codecs.deadLetter.type;
    const old = { reason: 'r', code: 'C', sourceTopic: 't', sourcePartition: 1, sourceOffset: '9', key: null, payload: Buffer.from('x'), failedAtMs: 5 };
    const read = v2.fromBuffer(v1.toBuffer(old), v2.createResolver(v1)) as DeadLetterRecord;
    assert.deepEqual(
      { payloadNull: read.payloadNull, headers: read.headers, truncated: read.truncated, payloadSize: read.payloadSize, payloadSha256: read.payloadSha256 },
      { payloadNull: false, headers: {}, truncated: false, payloadSize: null, payloadSha256: null },
    );
    const back = v1.fromBuffer(v2.toBuffer(deadLetterRecord), v1.createResolver(v2)) as { payload: Buffer };
    assert.deepEqual(back.payload, deadLetterRecord.payload);
  });

  it('recommendation.avsc before arm (issue 19) and the current one read each other; arm defaults to null', () => {
    const current = schemaOf('recommendation.avsc');
    const armField = current.fields.find((f) => f.name === 'arm')!;
    assert.equal(armField.default, null, 'arm was added with a default');
    const v1 = avro.Type.forSchema({ ...current, fields: current.fields.filter((f) => f.name !== 'arm') } as avro.Schema);
    const v2 = codecs.recommendation.type;
    const { arm: _arm, ...old } = recommendation;
    void _arm;
    const read = v2.fromBuffer(v1.toBuffer(old), v2.createResolver(v1)) as Recommendation;
    assert.equal(read.arm, null);
    const back = v1.fromBuffer(v2.toBuffer(recommendation), v1.createResolver(v2)) as Recommendation;
    assert.equal(back.eventId, recommendation.eventId);
    // A recommendation built without an arm (no experiment) encodes with the default.
    assert.equal(codecs.recommendation.decode(codecs.recommendation.encode(old)).arm, null);
  });

  it('a DeadLetter maps onto the dead-letter schema through codecs.deadLetterValue', () => {
    assert.deepEqual(Object.keys(deadLetterRecord).sort(), fieldNames('dead-letter.avsc'));
    assert.equal(deadLetterRecord.sourceTopic, deadLetter.source.topic);
    assert.equal(deadLetterRecord.sourcePartition, deadLetter.source.partition);
    assert.equal(deadLetterRecord.sourceOffset, deadLetter.source.offset);
    const noKey = codecs.deadLetterValue({ ...deadLetter, key: null });
    assert.equal(noKey.key, null);
  });
});

describe('codecs (src/eventlog/codec/avro.ts)', () => {
  it('round-trip every domain record', () => {
    assert.deepEqual({ ...codecs.interaction.decode(codecs.interaction.encode(interaction)) }, interaction);
    assert.deepEqual(plain(codecs.item.decode(codecs.item.encode(item))), plain(item));
    assert.deepEqual(plain(codecs.recommendation.decode(codecs.recommendation.encode(recommendation))), plain(recommendation));
    assert.deepEqual(plain(codecs.deadLetter.decode(codecs.deadLetter.encode(deadLetterRecord))), plain(deadLetterRecord));
  });

  it('read the same schema files as readSchema', () => {
    for (const name of SCHEMA_NAMES) assert.deepEqual(readSchema(name), schemaOf(`${name}.avsc`));
  });

  it('reject bytes that are not a value of the schema with UNDECODABLE', () => {
    const good = codecs.interaction.encode(interaction);
    for (const bad of [Buffer.from([0xde, 0xad, 0xbe, 0xef]), good.subarray(0, good.length - 3), Buffer.concat([good, Buffer.from([1])]), Buffer.alloc(0)]) {
      assert.throws(
        () => codecs.interaction.decode(bad),
        (err: unknown) => err instanceof BadInputError && err.code === 'UNDECODABLE',
      );
    }
  });

  it('the fingerprint is SHA-256 over the Parsing Canonical Form, first 16 hex digits (README "Wire format")', () => {
    // The canonical form of interaction.avsc written out by hand from the Avro spec's rules, independently of
    // avsc: full names ([FULLNAMES]: the enum inherits the namespace), only name/type/fields/symbols/items/
    // values/size in that order ([STRIP], [ORDER]; doc, default and logicalType go), no whitespace.
    const pcf =
      '{"name":"starstream.v1.Interaction","type":"record","fields":[' +
      '{"name":"eventId","type":"string"},{"name":"userId","type":"string"},{"name":"itemId","type":"string"},' +
      '{"name":"type","type":{"name":"starstream.v1.EventType","type":"enum","symbols":["view","click","cart","purchase","rating"]}},' +
      '{"name":"value","type":["null","double"]},{"name":"timestampMs","type":"long"},' +
      '{"name":"context","type":{"type":"map","values":"string"}}]}';
    const independent = createHash('sha256').update(pcf, 'utf8').digest('hex').slice(0, 16);
    assert.equal(codecs.interaction.fingerprint, independent);
    // Pinned: a change here breaks every external producer that names this schema in `starstream-schema`.
    assert.equal(independent, '92a211a96903bd5f');
    assert.equal(schemaHeaderValue(codecs.interaction), 'starstream.v1.Interaction@92a211a96903bd5f');
  });

  it('fingerprints differ per schema', () => {
    const prints = new Set([codecs.interaction, codecs.item, codecs.recommendation, codecs.deadLetter].map((c) => c.fingerprint));
    assert.equal(prints.size, 4);
  });
});

describe('teacher-case.avsc (the side stream)', () => {
  it('round-trips a TeacherCase through the codec, every field kept', () => {
    const decoded = codecs.teacherCase.decode(codecs.teacherCase.encode(teacherCase));
    assert.deepEqual(plain(decoded), plain(teacherCase));
    assert.deepEqual(Object.keys(teacherCase).sort(), schemaOf('teacher-case.avsc').fields.map((f) => f.name).sort());
  });

  it('keeps a null title and an empty sentence list; refuses an unknown sampling reason as bad input', () => {
    const bare: TeacherCase = { ...teacherCase, margin: null, candidates: [{ ...teacherCase.candidates[0]!, title: null, sentences: [] }], studentScores: [1] };
    assert.deepEqual(plain(codecs.teacherCase.decode(codecs.teacherCase.encode(bare))), plain(bare));
    const unknown = codecs.teacherCase.type.toBuffer({ ...teacherCase, reason: 'hunch' });
    assert.throws(
      () => codecs.teacherCase.decode(unknown),
      (err: unknown) => err instanceof BadInputError && err.code === 'UNDECODABLE',
    );
  });
});

