import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { starstream, type Run } from './helpers.ts';

/**
 * `starstream validate` before an import, and the import itself (`replay FILE.csv --map …`) on the embedded
 * default, as a user runs them. All runs start at once (each CLI start costs seconds on a busy machine).
 */

const T0 = 1_704_067_200;
const MAP = 'user=customer_id,item=sku,time=ts';

describe('starstream validate and the import of your own CSV', () => {
  const dir = mkdtempSync(join(tmpdir(), 'starstream-validate-'));
  const clean = join(dir, 'clean.csv');
  const messy = join(dir, 'messy.csv');
  const items = join(dir, 'items.csv');
  const runs = {} as Record<'clean' | 'messy' | 'replay', Run>;
  before(async () => {
    writeFileSync(items, 'id,title,categories\ns1,Red shoe,shoes|red\ns2,Blue hat,hats\n');
    writeFileSync(clean, `customer_id,sku,ts\nc1,s1,${T0}\nc2,s2,${T0 + 60}\nc1,s2,${T0 + 120}\nc2,s1,${T0 + 180}\n`);
    writeFileSync(
      messy,
      [
        'customer_id,sku,ts',
        `c1,s1,${T0}`,
        `c1,s2,soon`,
        `c2,s2,${T0 - 60}`,
        `c2,s2,${T0 - 60}`,
        `c3,s7,${T0 + 60}`,
        `c3,s1,${T0 + 120}`,
      ].join('\n') + '\n',
    );
    const env = { env: { STARSTREAM_LOG_LEVEL: 'warn' }, cwd: dir };
    [runs.clean, runs.messy, runs.replay] = await Promise.all([
      starstream(['validate', clean, '--map', MAP, '--catalogue', items], env),
      starstream(['validate', messy, '--map', MAP, '--time-format', 'epoch-s', '--catalogue', items], env),
      starstream(['replay', 'messy.csv', '--map', MAP, '--catalogue', 'items.csv'], { ...env, env: { ...env.env, STARSTREAM_OPS__PORT: '0' } }),
    ]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a clean file: exit 0, what it holds, and the command that imports it', () => {
    assert.equal(runs.clean.code, 0, runs.clean.stdout + runs.clean.stderr);
    assert.match(runs.clean.stdout, /columns\s+user=customer_id, item=sku, time=ts \(auto\)/);
    assert.match(runs.clean.stdout, /rows\s+4: 4 usable events, 2 users, 2 items, 2024-01-01T00:00:00\.000Z to 2024-01-01T00:03:00\.000Z/);
    assert.match(runs.clean.stdout, /catalogue\s+.*items\.csv: 2 items/);
    assert.match(runs.clean.stdout, /result: no problems; `starstream replay .*clean\.csv --map user=customer_id,item=sku,time=ts --catalogue .*items\.csv` imports it/);
  });

  it('a file with problems: exit 2, each kind with its count and first lines', () => {
    const out = runs.messy.stdout;
    assert.equal(runs.messy.code, 2, out + runs.messy.stderr);
    assert.match(out, /bad values\s+1\s+line 3\n\s+first: line 3: time \(column ts\) "soon" is not epoch seconds/);
    assert.match(out, /out of time order\s+2\s+lines 4, 5\n/);
    assert.match(out, /duplicate rows\s+1\s+line 5\n\s+first: line 5: the same event as line 4/);
    assert.match(out, /item ids not in the catalogue\s+1\s+line 6\n\s+first: line 6: item s7 is not in/);
    assert.match(out, /result: 4 kinds of problem; `starstream replay .*` skips the 1 rows it cannot use and sorts the rest by time/);
    assert.equal(runs.messy.stderr.trim(), '', 'the report is on stdout');
  });

  it('replay imports the same file: bad rows skipped and counted, the rest run in time order', () => {
    assert.equal(runs.replay.code, 0, runs.replay.stderr.slice(-2_000));
    assert.match(runs.replay.stdout, /starstream replay messy summary/);
    assert.match(runs.replay.stdout, /events\s+5\n/);
    assert.match(runs.replay.stdout, /malformed input lines skipped\s+1 \(first: line 3: time \(column ts\) "soon"/);
    assert.match(runs.replay.stdout, /recommendations written to\s+out\/replay-messy\.jsonl/);
    assert.match(runs.replay.stderr, /"msg":"out of time order; the events are replayed sorted by time"/);
  });
});
