import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Interaction, Item } from '../../src/domain/events.ts';
import { ConfigError } from '../../src/errors/index.ts';
import { generateCatalogue, generateStream, type SyntheticInput } from '../../src/data/synthetic.ts';

const DAY_MS = 86_400_000;
/** Small enough to run in about a tenth of a second, large enough for the shape checks to be stable. */
const WORLD: SyntheticInput = {
  users: 400,
  items: 1000,
  events: 30_000,
  categories: 12,
  seed: 'test',
  durationMs: 20 * DAY_MS,
};

const take = (input: SyntheticInput, n: number): Interaction[] => {
  const out: Interaction[] = [];
  for (const event of generateStream(input)) {
    out.push(event);
    if (out.length === n) break;
  }
  return out;
};

describe('synthetic stream', () => {
  const events = [...generateStream(WORLD)];
  const catalogue = generateCatalogue(WORLD);
  const itemsById = new Map<string, Item>(catalogue.map((item) => [item.itemId, item]));

  it('is deterministic for a seed and different for another', () => {
    assert.deepEqual(take(WORLD, 2000), events.slice(0, 2000));
    assert.deepEqual(generateCatalogue(WORLD), catalogue);
    const other = take({ ...WORLD, seed: 'other' }, 2000);
    assert.notDeepEqual(
      other.map((e) => [e.userId, e.itemId]),
      events.slice(0, 2000).map((e) => [e.userId, e.itemId]),
    );
    assert.notDeepEqual(generateCatalogue({ ...WORLD, seed: 'other' }), catalogue);
  });

  it('yields exactly `events` events with unique sequential ids and strictly increasing timestamps', () => {
    assert.equal(events.length, WORLD.events);
    events.forEach((e, k) => assert.equal(e.eventId, `e${k}`));
    for (let k = 1; k < events.length; k++) assert.ok(events[k]!.timestampMs > events[k - 1]!.timestampMs);
    const start = Date.UTC(2024, 0, 1);
    const end = start + WORLD.durationMs!;
    assert.ok(events[0]!.timestampMs >= start);
    const last = events[events.length - 1]!.timestampMs;
    assert.ok(
      Math.abs(last - end) < 0.1 * WORLD.durationMs!,
      `last event at ${(last - start) / DAY_MS} days`,
    );
  });

  it('is lazy: a billion-event stream starts at once', () => {
    const first = take({ ...WORLD, events: 1e9, durationMs: 1e12 }, 5);
    assert.equal(first.length, 5);
  });

  it('gives the top 10% of items a large share of the events (long tail)', () => {
    const counts = new Map<string, number>();
    for (const e of events) counts.set(e.itemId, (counts.get(e.itemId) ?? 0) + 1);
    const sorted = [...counts.values()].sort((a, b) => b - a);
    const head = sorted.slice(0, WORLD.items! / 10).reduce((a, b) => a + b, 0);
    assert.ok(head / events.length > 0.4, `top 10% share ${head / events.length}`);
    assert.ok(counts.size > 0.8 * WORLD.items!, `only ${counts.size} items used`);
  });

  it('has users and items that first appear late (cold start)', () => {
    const start = Date.UTC(2024, 0, 1);
    const late = start + WORLD.durationMs! / 3;
    const firstSeen = new Map<string, number>();
    for (const e of events) if (!firstSeen.has(e.userId)) firstSeen.set(e.userId, e.timestampMs);
    const lateUsers = [...firstSeen.values()].filter((t) => t > late).length;
    assert.ok(lateUsers >= 0.05 * WORLD.users!, `${lateUsers} late users`);
    const newItems = catalogue.filter((item) => item.timestampMs > start);
    assert.ok(newItems.length >= 0.15 * WORLD.items!, `${newItems.length} new items`);
    const newItemsUsed = new Set(
      events.filter((e) => itemsById.get(e.itemId)!.timestampMs > start).map((e) => e.itemId),
    );
    assert.ok(newItemsUsed.size > newItems.length / 2, `${newItemsUsed.size} new items used`);
  });

  it('only uses catalogued items, never before their release', () => {
    for (const e of events) {
      const item = itemsById.get(e.itemId);
      assert.ok(item, `${e.itemId} not in catalogue`);
      assert.ok(e.timestampMs >= item.timestampMs, `${e.eventId} uses ${e.itemId} before its release`);
    }
  });

  it('builds a readable catalogue: ids in order, 1-3 named categories, titles with their category', () => {
    assert.equal(catalogue.length, WORLD.items);
    catalogue.forEach((item, k) => {
      assert.equal(item.itemId, `i${k}`);
      assert.ok(item.categories.length >= 1 && item.categories.length <= 3);
      assert.equal(new Set(item.categories).size, item.categories.length);
      assert.match(item.title, /^\w+ \w+ \S/);
      assert.ok(item.title.endsWith(item.categories[0]!));
      assert.match(item.attributes.price ?? '', /^\d+\.\d\d$/);
    });
    assert.ok(new Set(catalogue.flatMap((item) => item.categories)).size <= WORLD.categories!);
  });

  it('groups events into sessions: seconds to minutes apart, hours between', () => {
    const bySession = new Map<string, Interaction[]>();
    for (const e of events) {
      const key = e.context.session!;
      const list = bySession.get(key);
      if (list) list.push(e);
      else bySession.set(key, [e]);
    }
    const within: number[] = [];
    const between: number[] = [];
    const lastOfUser = new Map<string, number>();
    for (const list of bySession.values()) {
      assert.equal(new Set(list.map((e) => e.userId)).size, 1, 'a session belongs to one user');
      for (let k = 1; k < list.length; k++) within.push(list[k]!.timestampMs - list[k - 1]!.timestampMs);
    }
    const sessionStarts = [...bySession.values()]
      .map((list) => list[0]!)
      .sort((a, b) => a.timestampMs - b.timestampMs);
    for (const first of sessionStarts) {
      const previous = lastOfUser.get(first.userId);
      if (previous !== undefined) between.push(first.timestampMs - previous);
      const list = bySession.get(first.context.session!)!;
      lastOfUser.set(first.userId, list[list.length - 1]!.timestampMs);
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    assert.ok(median(within) < 2 * 60_000, `median gap within a session ${median(within)} ms`);
    assert.ok(median(between) > 3_600_000, `median gap between sessions ${median(between)} ms`);
    const meanLength = events.length / bySession.size;
    assert.ok(meanLength > 5 && meanLength < 11, `mean session length ${meanLength}`);
  });

  it('keeps a session mostly within one category', () => {
    const lastInSession = new Map<string, string>();
    let pairs = 0;
    let shared = 0;
    for (const e of events) {
      const session = e.context.session!;
      const previous = lastInSession.get(session);
      if (previous !== undefined && previous !== e.itemId) {
        pairs++;
        const a = itemsById.get(previous)!.categories;
        if (itemsById.get(e.itemId)!.categories.some((c) => a.includes(c))) shared++;
      }
      lastInSession.set(session, e.itemId);
    }
    assert.ok(shared / pairs > 0.7, `share of consecutive pairs with a common category ${shared / pairs}`);
  });

  it('follows the type mix and gives each type its kind of value', () => {
    const counts = new Map<string, number>();
    for (const e of events) {
      counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
      if (e.type === 'view') assert.ok(Number.isInteger(e.value) && e.value! >= 1);
      if (e.type === 'click') assert.equal(e.value, null);
      if (e.type === 'cart' || e.type === 'purchase')
        assert.equal(e.value, Number(itemsById.get(e.itemId)!.attributes.price));
      if (e.type === 'rating') assert.ok(Number.isInteger(e.value) && e.value! >= 1 && e.value! <= 5);
    }
    const share = (type: string): number => (counts.get(type) ?? 0) / events.length;
    assert.ok(Math.abs(share('view') - 0.6) < 0.02);
    assert.ok(Math.abs(share('purchase') - 0.05) < 0.01);
    const onlyViews = take(
      { ...WORLD, typeMix: { view: 1, click: 0, cart: 0, purchase: 0, rating: 0 } },
      500,
    );
    assert.ok(onlyViews.every((e) => e.type === 'view'));
  });

  it('rejects bad options with an error that names the field', () => {
    const bad: Array<[SyntheticInput, string]> = [
      [{ users: 0 }, 'synthetic.users'],
      [{ events: 10, durationMs: 5 }, 'synthetic.durationMs'],
      [{ tasteClusters: { min: 3, max: 2 } }, 'synthetic.tasteClusters.max'],
      [{ driftProbability: 1.5 }, 'synthetic.driftProbability'],
      [{ typeMix: { view: 0, click: 0, cart: 0, purchase: 0, rating: 0 } }, 'synthetic.typeMix'],
    ];
    for (const [input, field] of bad) {
      assert.throws(
        () => generateStream(input),
        (err: unknown) => err instanceof ConfigError && err.field === field,
        field,
      );
    }
  });
});
