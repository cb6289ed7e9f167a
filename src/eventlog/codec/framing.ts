import avro from 'avsc';
import type { Config } from '../../config/schema.ts';
import { BadInputError } from '../../errors/index.ts';
import { checkAvroBounds } from './guard.ts';
import type { Headers } from '../port.ts';
import { schemaFingerprint, type Codec } from './avro.ts';
import { createSchemaRegistryClient, type SchemaRegistryClient } from './registry.ts';

/**
 * How an Avro value travels on the log, so that a reader knows which schema wrote it.
 *
 * - `header` (default, no registry): the value is the plain Avro binary body; a header
 *   `starstream-schema: <namespace.Name>@<fingerprint>` names the writer schema. A header rather than a magic
 *   prefix keeps the body plain Avro that any tool reads with the schema file, and headers travel with a
 *   record into the DLQ, so a dead letter still says what wrote it.
 * - `confluent` (`eventLog.kafka.schemaRegistryUrl` set): the Confluent wire format, magic byte 0 and a 4-byte
 *   big-endian schema id before the body, subjects named `<topic>-value`; what Confluent tools expect.
 *
 * Decoding errors are `BadInputError`: `UNKNOWN_SCHEMA` when the writer schema is unknown (unregistered id,
 * unknown fingerprint, another record type) or cannot be read as the reader's; `UNDECODABLE` for bytes that
 * are not what they claim. A writer schema other than the reader's is resolved by Avro's rules.
 */
export const SCHEMA_HEADER = 'starstream-schema';

export interface FramedValue {
  readonly value: Buffer;
  readonly headers: Readonly<Record<string, Buffer>>;
}

export interface Framing {
  readonly kind: 'header' | 'confluent';
  /** `topic` names the registry subject in the Confluent format. */
  encode<T>(codec: Codec<T>, value: T, topic: string): Promise<FramedValue>;
  decode<T>(codec: Codec<T>, value: Buffer, headers: Headers): Promise<T>;
}

/** The header value that names a codec's schema. */
export function schemaHeaderValue(codec: Codec<unknown>): string {
  return `${codec.type.name ?? codec.name}@${codec.fingerprint}`;
}

/** Picks the framing the config asks for: Confluent when a registry URL is set (Kafka only), else headers. */
export function createFraming(config: Config['eventLog'], options: { fetch?: typeof fetch } = {}): Framing {
  const url = config.kind === 'kafka' ? config.kafka.schemaRegistryUrl : undefined;
  if (!url) return headerFraming();
  return confluentFraming(
    createSchemaRegistryClient({
      url,
      timeoutMs: config.kafka.schemaRegistryTimeoutMs,
      fetch: options.fetch,
    }),
  );
}

/**
 * Registry-free framing. `writers` are other schemas this reader may meet (older versions kept beside the
 * current ones); a record written with one of them is resolved into the reader's schema.
 */
export function headerFraming(options: { writers?: readonly avro.Type[] } = {}): Framing {
  const writers = new Map<string, avro.Type>();
  for (const type of options.writers ?? []) writers.set(`${type.name}@${schemaFingerprint(type)}`, type);
  const resolvers = new Resolvers();
  return {
    kind: 'header',
    encode: async (codec, value) => ({
      value: codec.encode(value),
      headers: { [SCHEMA_HEADER]: Buffer.from(schemaHeaderValue(codec)) },
    }),
    decode: async (codec, value, headers) => {
      const named = headers[SCHEMA_HEADER]?.toString();
      // No header: a plain Avro record from another tool, read with the reader's own schema.
      if (named === undefined || named === schemaHeaderValue(codec)) return codec.decode(value);
      const writer = writers.get(named);
      if (!writer || writer.name !== codec.type.name) {
        throw new BadInputError(
          'UNKNOWN_SCHEMA',
          `writer schema ${named.slice(0, 200)} is unknown to a ${codec.type.name} reader`,
        );
      }
      return decodeWith(codec, writer, resolvers.get(codec, writer, named), value);
    },
  };
}

/** Confluent wire format through a schema registry. */
export function confluentFraming(registry: SchemaRegistryClient): Framing {
  const resolvers = new Resolvers();
  // Parsed writer schemas by id: ids never change meaning in a registry.
  const types = new Map<number, { type: avro.Type; fingerprint: string }>();
  return {
    kind: 'confluent',
    encode: async (codec, value, topic) => {
      // The schema file as written, not avsc's `schema()` (the Parsing Canonical Form): the registry and every
      // Confluent consumer need the logical types (`timestamp-millis`), the defaults (the compatibility check
      // judges "new fields need defaults" on them) and the docs. The canonical form is only for fingerprints.
      const id = await registry.register(`${topic}-value`, codec.schemaJson);
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(id, 1);
      return { value: Buffer.concat([prefix, codec.encode(value)]), headers: {} };
    },
    decode: async (codec, value) => {
      if (value.length < 5 || value[0] !== 0) {
        throw new BadInputError(
          'UNDECODABLE',
          'not in the Confluent wire format (magic byte 0 and a schema id)',
        );
      }
      const id = value.readUInt32BE(1);
      const body = value.subarray(5);
      let writer = types.get(id);
      if (!writer) {
        const writerJson = await registry.schemaById(id);
        let type: avro.Type;
        try {
          type = avro.Type.forSchema(JSON.parse(writerJson) as avro.Schema);
        } catch (cause) {
          throw new BadInputError('UNKNOWN_SCHEMA', `schema ${id} from the registry is not valid Avro`, {
            cause,
          });
        }
        writer = { type, fingerprint: schemaFingerprint(type) };
        types.set(id, writer);
      }
      if (writer.type.name !== codec.type.name) {
        throw new BadInputError(
          'UNKNOWN_SCHEMA',
          `schema ${id} is ${writer.type.name ?? 'unnamed'}, not ${codec.type.name}`,
        );
      }
      if (writer.fingerprint === codec.fingerprint) return codec.decode(body);
      return decodeWith(codec, writer.type, resolvers.get(codec, writer.type, `id ${id}`), body);
    },
  };
}


function decodeWith<T>(codec: Codec<T>, writer: avro.Type, resolver: avro.Resolver, bytes: Buffer): T {
  try {
    checkAvroBounds(writer, bytes);
    return codec.type.fromBuffer(bytes, resolver) as T;
  } catch (cause) {
    throw new BadInputError('UNDECODABLE', `not a ${codec.type.name}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

/** Resolvers from writer schemas to a reader, built once per pair. */
class Resolvers {
  private readonly cache = new Map<string, avro.Resolver>();

  get(codec: Codec<unknown>, writer: avro.Type, writerKey: string): avro.Resolver {
    const key = `${codec.fingerprint}\u0000${writerKey}`;
    let resolver = this.cache.get(key);
    if (!resolver) {
      try {
        resolver = codec.type.createResolver(writer);
      } catch (cause) {
        throw new BadInputError(
          'UNKNOWN_SCHEMA',
          `writer schema ${writerKey} cannot be read as ${codec.type.name}`,
          { cause },
        );
      }
      this.cache.set(key, resolver);
    }
    return resolver;
  }
}
