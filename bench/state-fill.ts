/**
 * How the learned state fills over a closed world: the learning path alone (no log, no ranking) over a fixed
 * set of users and items, printing every 30k events the co-occurrence entries over all items, the history
 * entries over all users and the V8 heap. Where these stop growing is where a closed-world soak's memory
 * must be flat; before that, growth is state, not a leak.
 *
 *   npx tsx bench/state-fill.ts [--users 500] [--items 500] [--events 300000]
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/load.ts';
import { generateStream } from '../src/data/synthetic.ts';
import { learnEvent, replayEngine } from '../src/eval/replay.ts';
import { buildEngine } from '../src/main.ts';
import { StoreView } from '../src/stages/state/store-view.ts';
import { runAsScript, table, type Row } from './report.ts';

runAsScript(import.meta.url, async () => {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { users: { type: 'string' }, items: { type: 'string' }, events: { type: 'string' } } });
  const [users, items, events] = [Number(values.users ?? 500), Number(values.items ?? 500), Number(values.events ?? 300_000)];
  const config = loadConfig({});
  const engine = buildEngine(config);
  await engine.store.init();
  const replay = replayEngine(config, engine);
  const view = new StoreView(engine.store, engine.mergeItem);
  const itemIds = Array.from({ length: items }, (_, i) => `i${i}`);
  const userIds = Array.from({ length: users }, (_, i) => `u${i}`);
  const rows: Row[] = [];
  let n = 0;
  for (const event of generateStream({ users, items, seed: 5, events, coldStartShare: 0, newItemShare: 0 })) {
    await learnEvent(view, event, replay);
    if (++n % 30_000 !== 0) continue;
    let cooccurrence = 0;
    for (const item of (await engine.store.getItems(itemIds)).values()) cooccurrence += item.cooccurrence.size;
    let history = 0;
    for (const user of (await engine.store.getUsers(userIds)).values()) history += user.recentItems.length;
    const row = { events: n, 'co-occurrence entries': cooccurrence, 'history entries': history, 'heap MB': Math.round(process.memoryUsage().heapUsed / 2 ** 20) };
    rows.push(row);
    process.stderr.write(`state-fill: ${JSON.stringify(row)}\n`);
  }
  process.stdout.write(`\nclosed world ${users} users × ${items} items (store.cooccurrenceLimit ${config.store.cooccurrenceLimit}, store.userHistoryLength ${config.store.userHistoryLength})\n${table(rows)}`);
});
