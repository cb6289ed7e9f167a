import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import type { Interaction } from '../../src/domain/events.ts';
import { createCodecs } from '../../src/eventlog/codec/avro.ts';
import type { LogRecord } from '../../src/eventlog/port.ts';
import { buildEngine, buildProcessor, buildStore } from '../../src/main.ts';

// Two pipeline instances (each with its own learner, view and batches, as two processes would have) write
// to one store at the same time. Users are partitioned between them, items are shared: every item update
// must survive, because item writes are commutative deltas.
test('two pipeline instances sharing one store lose no concurrent item update', async () => {
  const config = loadConfig({ overrides: { store: { dimension: 8 }, pipeline: { rankingEnabled: false } } });
  const store = buildStore(config);
  await store.init();
  const instances = [0, 1].map(() => buildProcessor(buildEngine(config, store)));
  const codecs = createCodecs();
  const items = ['hit-1', 'hit-2', 'hit-3'];
  const eventsFor = (instance: number): Interaction[] =>
    Array.from({ length: 300 }, (_, i) => ({
      eventId: `e${instance}-${i}`,
      userId: `u${instance}-${i % 25}`,
      itemId: items[i % items.length]!,
      type: 'click' as const,
      value: null,
      timestampMs: 1_700_000_000_000 + i * 1_000,
      context: {},
    }));
  const toRecords = (events: Interaction[]): LogRecord[] =>
    events.map((e, i) => ({ topic: 'interactions', partition: 0, offset: String(i), key: Buffer.from(e.userId), value: codecs.interaction.encode(e), headers: {}, timestampMs: Date.now() }));

  const batches = [0, 1].map((n) => toRecords(eventsFor(n)));
  // Interleave small batches of both instances, all in flight together.
  await Promise.all(
    [0, 1].map(async (n) => {
      for (let start = 0; start < 300; start += 20) await instances[n]!.process(batches[n]!.slice(start, start + 20));
    }),
  );

  const profiles = await store.getItems(items);
  for (const id of items) {
    const item = profiles.get(id)!;
    assert.equal(item.interactionCount, 200, `${id}: 2 instances × 100 events each`);
    const audience = new Set(item.recentUsers.map((u) => u.id.split('-')[0]));
    assert.deepEqual([...audience].sort(), ['u0', 'u1'], `${id} was seen by users of both instances`);
  }
  const users = await store.getUsers(['u0-0', 'u1-0']);
  assert.equal(users.get('u0-0')!.interactionCount, 12);
  assert.equal(users.get('u1-0')!.interactionCount, 12);
});
