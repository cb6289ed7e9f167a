import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import type { DeadLetter, Interaction, Item, Recommendation } from '../../domain/events.ts';
import { SAMPLING_REASONS, type TeacherCase } from '../../domain/teacher.ts';
import { BadInputError } from '../../errors/index.ts';
import { checkAvroBounds } from './guard.ts';

/**
 * Avro codecs for the records in `schemas/`. Decoding checks the bytes (truncated data, trailing bytes, bad
 * unions); semantic checks (ids, ranges) belong to the ingest stage.
 */

export const SCHEMA_NAMES = ['interaction', 'item', 'recommendation', 'dead-letter', 'item-delta', 'teacher-case'] as const;
export type SchemaName = (typeof SCHEMA_NAMES)[number];

const schemaDir = new URL('../../../schemas/', import.meta.url);

export function readSchema(name: SchemaName): avro.Schema {
  return JSON.parse(readFileSync(new URL(`${name}.avsc`, schemaDir), 'utf8')) as avro.Schema;
}

export interface Codec<T> {
  readonly name: SchemaName;
  readonly type: avro.Type;
  /**
   * Identifies the writer schema without a registry: the first 16 lowercase hex digits (8 bytes) of the
   * SHA-256 of the schema's Avro Parsing Canonical Form (not Avro's 64-bit Rabin fingerprint, which the spec
   * also defines; any client can compute this one with a standard SHA-256). README "Wire format" says how.
   */
  readonly fingerprint: string;
  /**
   * The schema file as JSON (docs, defaults and logical types kept): what a schema registry gets. Not the
   * canonical form, which drops exactly what registry consumers and compatibility checks need.
   */
  readonly schemaJson: string;
  encode(value: T): Buffer;
  /** Throws `BadInputError` (code `UNDECODABLE`) when the bytes are not a value of this schema. */
  decode(bytes: Buffer): T;
}

function makeCodec<T>(name: SchemaName): Codec<T> {
  const schema = readSchema(name);
  const type = avro.Type.forSchema(schema);
  const fingerprint = schemaFingerprint(type);
  return {
    name,
    type,
    fingerprint,
    schemaJson: JSON.stringify(schema),
    encode: (value) => type.toBuffer(value),
    decode: (bytes) => {
      try {
        checkAvroBounds(type, bytes);
        return type.fromBuffer(bytes) as T;
      } catch (cause) {
        throw new BadInputError('UNDECODABLE', `not a ${type.name ?? name}: ${(cause as Error).message}`, { cause });
      }
    },
  };
}

/**
 * The fingerprint every codec and framing uses: SHA-256 over the Parsing Canonical Form (avsc's
 * `type.fingerprint('sha256')` hashes `type.getSchema({ exportAttrs: false })`, which is that form), first 8
 * bytes as hex. The canonical form drops docs, defaults, aliases and logical types, so two schemas that differ
 * only there share a fingerprint (and read each other's data unchanged).
 */
export function schemaFingerprint(type: avro.Type): string {
  return type.fingerprint('sha256').toString('hex').slice(0, 16);
}

export interface DeadLetterRecord {
  reason: string;
  code: string;
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: string;
  key: Buffer | null;
  payload: Buffer;
  failedAtMs: number;
  payloadNull: boolean;
  headers: Record<string, Buffer>;
  truncated: boolean;
  payloadSize: number | null;
  payloadSha256: string | null;
}

/**
 * One record of the `item-deltas` topic (`schemas/item-delta.avsc`) as Avro reads and writes it: the changes
 * to one item learned from one batch of one interactions partition. `src/pipeline/item-delta-records.ts`
 * maps it to and from the store's `ItemDelta`s.
 */
export interface ItemDeltasRecord {
  itemId: string;
  sourceTopic: string;
  sourcePartition: number;
  changes: ItemChangeRecord[];
}

export interface ItemChangeRecord {
  sourceOffset: string;
  atMs: number;
  /** float32 little-endian */
  initialVector: Buffer | null;
  /** float32 little-endian */
  vectorDelta: Buffer | null;
  seenBy: { userId: string; atMs: number } | null;
  interactions: number;
  cooccurrence: Record<string, number>;
}

/** All codecs, built once by the composition root and passed to whoever needs them. */
export interface Codecs {
  readonly interaction: Codec<Interaction>;
  readonly item: Codec<Item>;
  readonly recommendation: Codec<Recommendation>;
  readonly deadLetter: Codec<DeadLetterRecord>;
  readonly itemDeltas: Codec<ItemDeltasRecord>;
  /** The side stream's cases; decoding also checks that `reason` is a known `SamplingReason`. */
  readonly teacherCase: Codec<TeacherCase>;
  /**
   * The envelope of a dead letter as the Avro record `deadLetter` encodes, whole (`truncated: false`), with the
   * value's size and SHA-256. Bounding it to what the DLQ topic takes is `pipeline/outputs.ts`'s job.
   */
  deadLetterValue(letter: DeadLetter): DeadLetterRecord;
}

export function createCodecs(): Codecs {
  const deadLetter = makeCodec<DeadLetterRecord>('dead-letter');
  return {
    interaction: makeCodec<Interaction>('interaction'),
    item: makeCodec<Item>('item'),
    recommendation: makeCodec<Recommendation>('recommendation'),
    deadLetter,
    itemDeltas: makeCodec<ItemDeltasRecord>('item-delta'),
    teacherCase: teacherCaseCodec(),
    deadLetterValue: (letter) => ({
        reason: letter.reason,
        code: letter.code,
        sourceTopic: letter.source.topic,
        sourcePartition: letter.source.partition,
        sourceOffset: letter.source.offset,
        key: letter.key ? Buffer.from(letter.key) : null,
        payload: Buffer.from(letter.payload),
        failedAtMs: letter.failedAtMs,
        payloadNull: letter.payloadNull === true,
        headers: Object.fromEntries(Object.entries(letter.headers ?? {}).map(([name, value]) => [name, Buffer.from(value)])),
        truncated: false,
        payloadSize: letter.payload.length,
        payloadSha256: createHash('sha256').update(letter.payload).digest('hex'),
      }),
  };
}

/**
 * `reason` is a string on the wire (Avro enum symbols cannot hold `cold-user`, and a string lets a new reason
 * reach old readers), so the codec checks it: a reason this build does not know is bad input, not a crash later.
 */
function teacherCaseCodec(): Codec<TeacherCase> {
  const codec = makeCodec<TeacherCase>('teacher-case');
  const known: ReadonlySet<string> = new Set(SAMPLING_REASONS);
  return {
    ...codec,
    decode: (bytes) => {
      const value = codec.decode(bytes);
      if (!known.has(value.reason)) {
        throw new BadInputError('UNDECODABLE', `teacher case ${value.caseId.slice(0, 100)} has an unknown reason ${JSON.stringify(value.reason.slice(0, 50))}`);
      }
      return value;
    },
  };
}
