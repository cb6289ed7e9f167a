import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import avro from 'avsc';
import { parseConfig } from '../../src/config/load.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { BadInputError, FatalError, TransientError } from '../../src/errors/index.ts';
import { createCodecs, readSchema } from '../../src/eventlog/codec/avro.ts';
import {
  confluentFraming,
  createFraming,
  headerFraming,
  SCHEMA_HEADER,
  schemaHeaderValue,
} from '../../src/eventlog/codec/framing.ts';
import { createSchemaRegistryClient } from '../../src/eventlog/codec/registry.ts';
import { freePort } from '../../scripts/kafka/broker.mjs';

const codecs = createCodecs();
const interaction: Interaction = {
  eventId: 'e1',
  userId: 'u1',
  itemId: 'i1',
  type: 'purchase',
  value: 9.5,
  timestampMs: 1_700_000_000_000,
  context: { device: 'phone' },
};

/** The interaction schema as a later version might write it: one more field, with a default. */
function newerInteractionType(): avro.Type {
  const schema = readSchema('interaction') as { fields: unknown[] };
  return avro.Type.forSchema({
    ...schema,
    fields: [...schema.fields, { name: 'channel', type: 'string', default: 'web' }],
  } as avro.Schema);
}

const isBadInput = (code: string) => (e: unknown) => e instanceof BadInputError && e.code === code;

describe('header framing', () => {
  const framing = headerFraming({ writers: [newerInteractionType()] });

  it('writes the plain Avro body and names the writer schema in a header', async () => {
    const framed = await framing.encode(codecs.interaction, interaction, 'topic');
    assert.deepEqual(framed.value, codecs.interaction.encode(interaction));
    assert.equal(
      framed.headers[SCHEMA_HEADER]?.toString(),
      `starstream.v1.Interaction@${codecs.interaction.fingerprint}`,
    );
    assert.deepEqual(
      { ...(await framing.decode(codecs.interaction, framed.value, framed.headers)) },
      interaction,
    );
  });

  it('reads a record without the header with the reader schema', async () => {
    const decoded = await framing.decode(codecs.interaction, codecs.interaction.encode(interaction), {});
    assert.equal(decoded.eventId, 'e1');
  });

  it('resolves a known newer writer schema into the reader schema', async () => {
    const newer = newerInteractionType();
    const header = `${newer.name}@${newer.fingerprint('sha256').toString('hex').slice(0, 16)}`;
    assert.notEqual(header, schemaHeaderValue(codecs.interaction));
    const bytes = newer.toBuffer({ ...interaction, channel: 'app' });
    const decoded = await framing.decode(codecs.interaction, bytes, { [SCHEMA_HEADER]: Buffer.from(header) });
    assert.deepEqual({ ...decoded }, interaction);
  });

  it('refuses unknown schemas and bad bytes with the right codes', async () => {
    const body = codecs.interaction.encode(interaction);
    const named = (v: string) => ({ [SCHEMA_HEADER]: Buffer.from(v) });
    await assert.rejects(
      framing.decode(codecs.interaction, body, named('starstream.v1.Interaction@ffffffffffffffff')),
      isBadInput('UNKNOWN_SCHEMA'),
    );
    await assert.rejects(
      framing.decode(codecs.interaction, body, named(schemaHeaderValue(codecs.item))),
      isBadInput('UNKNOWN_SCHEMA'),
    );
    await assert.rejects(
      framing.decode(codecs.interaction, body, named('garbage')),
      isBadInput('UNKNOWN_SCHEMA'),
    );
    const header = { [SCHEMA_HEADER]: Buffer.from(schemaHeaderValue(codecs.interaction)) };
    await assert.rejects(
      framing.decode(codecs.interaction, body.subarray(0, body.length - 2), header),
      isBadInput('UNDECODABLE'),
    );
    await assert.rejects(
      framing.decode(codecs.interaction, Buffer.concat([body, Buffer.from([1])]), header),
      isBadInput('UNDECODABLE'),
    );
  });
});

/** A fake schema registry: the few endpoints the client uses, with call counts. */
class FakeRegistry {
  readonly schemas: string[] = [];
  readonly calls: string[] = [];
  authorization: string | undefined;
  status: number | null = null;
  private readonly server = createServer((req, res) => void this.handle(req, res));
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    this.calls.push(`${req.method} ${req.url}`);
    this.authorization = req.headers.authorization;
    const reply = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
      res.end(JSON.stringify(json));
    };
    if (this.status !== null) return reply(this.status, { error_code: this.status, message: 'forced' });
    if (req.method === 'POST' && /^\/subjects\/[^/]+\/versions$/.test(req.url ?? '')) {
      const schema = (JSON.parse(body) as { schema: string }).schema;
      let id = this.schemas.indexOf(schema) + 1;
      if (id === 0) id = this.schemas.push(schema);
      return reply(200, { id });
    }
    const byId = /^\/schemas\/ids\/(\d+)$/.exec(req.url ?? '');
    const schema = byId ? this.schemas[Number(byId[1]) - 1] : undefined;
    if (req.method === 'GET' && schema) return reply(200, { schema });
    return reply(404, { error_code: 40403, message: 'Schema not found' });
  }
}

describe('confluent framing', () => {
  const registry = new FakeRegistry();
  before(() => registry.start());
  after(() => registry.stop());
  const client = () => createSchemaRegistryClient({ url: registry.url, timeoutMs: 2_000 });

  it('writes magic byte 0 and the registered id, registers once, reads it back', async () => {
    const framing = confluentFraming(client());
    const first = await framing.encode(codecs.interaction, interaction, 'clicks');
    const second = await framing.encode(codecs.interaction, { ...interaction, eventId: 'e2' }, 'clicks');
    assert.equal(first.value[0], 0);
    const id = first.value.readUInt32BE(1);
    assert.equal(second.value.readUInt32BE(1), id);
    assert.deepEqual(first.value.subarray(5), codecs.interaction.encode(interaction));
    assert.equal(registry.calls.filter((c) => c === 'POST /subjects/clicks-value/versions').length, 1);
    assert.deepEqual({ ...(await framing.decode(codecs.interaction, first.value, {})) }, interaction);
  });

  it('resolves a newer writer schema registered by someone else', async () => {
    const newer = newerInteractionType();
    const id = await client().register('clicks-value', JSON.stringify(newer.schema()));
    const bytes = Buffer.concat([
      Buffer.from([0, 0, 0, 0, id]),
      newer.toBuffer({ ...interaction, channel: 'app' }),
    ]);
    const decoded = await confluentFraming(client()).decode(codecs.interaction, bytes, {});
    assert.deepEqual({ ...decoded }, interaction);
  });

  it('refuses unknown ids, another record type and bad bytes with the right codes', async () => {
    const framing = confluentFraming(client());
    const framed = await framing.encode(codecs.interaction, interaction, 'clicks');
    const unknownId = Buffer.from(framed.value);
    unknownId.writeUInt32BE(999_999, 1);
    await assert.rejects(framing.decode(codecs.interaction, unknownId, {}), isBadInput('UNKNOWN_SCHEMA'));
    await assert.rejects(framing.decode(codecs.item, framed.value, {}), isBadInput('UNKNOWN_SCHEMA'));
    await assert.rejects(
      framing.decode(codecs.interaction, framed.value.subarray(0, 8), {}),
      isBadInput('UNDECODABLE'),
    );
    await assert.rejects(
      framing.decode(codecs.interaction, Buffer.from([1, 0, 0, 0, 1, 2]), {}),
      isBadInput('UNDECODABLE'),
    );
    await assert.rejects(
      framing.decode(codecs.interaction, Buffer.from([0, 1]), {}),
      isBadInput('UNDECODABLE'),
    );
  });

  it('classifies registry failures and sends basic auth from the URL', async () => {
    registry.status = 503;
    await assert.rejects(
      client().schemaById(1),
      (e: unknown) => e instanceof TransientError && e.code === 'SCHEMA_REGISTRY_UNAVAILABLE',
    );
    registry.status = 401;
    await assert.rejects(
      client().register('s', '"string"'),
      (e: unknown) => e instanceof FatalError && e.code === 'SCHEMA_REGISTRY_AUTH',
    );
    registry.status = null;
    const authed = createSchemaRegistryClient({
      url: registry.url.replace('http://', 'http://alice:s%3Acret@'),
      timeoutMs: 2_000,
    });
    await authed.register('auth-value', '"string"');
    assert.equal(registry.authorization, `Basic ${Buffer.from('alice:s:cret').toString('base64')}`);
    const down = createSchemaRegistryClient({
      url: `http://127.0.0.1:${await freePort()}`,
      timeoutMs: 1_000,
    });
    await assert.rejects(
      down.schemaById(1),
      (e: unknown) => e instanceof TransientError && e.code === 'SCHEMA_REGISTRY_UNAVAILABLE',
    );
  });

  it('registers the full schema (logical types, defaults, docs), not the Parsing Canonical Form (issue 16)', async () => {
    const framing = confluentFraming(client());
    const rec = { eventId: 'e1', userId: 'u1', items: [], modelVersion: 'v', generatedAtMs: 1_700_000_000_000, pipelineLatencyMs: 1.5 };
    const framed = await framing.encode(codecs.recommendation, rec, 'full-schema');
    const registered = JSON.parse(registry.schemas[framed.value.readUInt32BE(1) - 1]!) as unknown;
    assert.deepEqual(registered, readSchema('recommendation'), 'exactly the schema file');
    const generatedAt = (registered as { fields: { name: string; type: unknown }[] }).fields.find((f) => f.name === 'generatedAtMs');
    assert.deepEqual(generatedAt?.type, { type: 'long', logicalType: 'timestamp-millis' }, 'Confluent consumers see a timestamp');

    const letters = await framing.encode(codecs.deadLetter, codecs.deadLetterValue({ reason: 'r', code: 'C', source: { topic: 't', partition: 0, offset: '1' }, key: null, payload: Buffer.alloc(0), failedAtMs: 1 }), 'full-dlq');
    const dlq = JSON.parse(registry.schemas[letters.value.readUInt32BE(1) - 1]!) as { doc?: string; fields: { name: string; default?: unknown }[] };
    assert.ok(dlq.doc, 'docs are kept');
    assert.equal(dlq.fields.find((f) => f.name === 'truncated')?.default, false, 'defaults are kept for the registry\'s compatibility check');
    // The full schema read back from the registry has the codec's fingerprint: fingerprints use the canonical form.
    assert.equal((await framing.decode(codecs.recommendation, framed.value, {})).generatedAtMs, rec.generatedAtMs);
  });

  it('is what the config picks when a registry URL is set on Kafka', () => {
    const withUrl = parseConfig({
      eventLog: { kind: 'kafka', kafka: { schemaRegistryUrl: 'http://r:8081' } },
    });
    assert.equal(createFraming(withUrl.eventLog).kind, 'confluent');
    assert.equal(createFraming(parseConfig({}).eventLog).kind, 'header');
  });
});
