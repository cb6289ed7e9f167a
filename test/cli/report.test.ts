import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { DeliberateDeadLetters } from '../../src/cli/deliberate.ts';
import type { DemoSummary } from '../../src/cli/demo.ts';
import { replayOutFile } from '../../src/cli/replay.ts';
import { deliberateCount, summaryText } from '../../src/cli/report.ts';
import { createLogger } from '../../src/logging/logger.ts';

const SUMMARY: DemoSummary = {
  events: 50_000,
  seconds: 10,
  eventsPerSecond: 5_000,
  recommendations: 49_984,
  deadLetters: 16,
  latencyP50Ms: 1,
  latencyP99Ms: 5,
  hitRate: 0.2,
  popularityHitRate: 0.05,
  hitCases: 45_000,
};
const MIX = { garbageEvery: 5_000, nonFiniteEvery: 7_919 };

describe('run summaries', () => {
  it('are titled by what ran', () => {
    assert.match(summaryText(SUMMARY, { title: 'demo', out: 'o.jsonl', next: [] }), /^\nstarstream demo summary\n/);
    const replay = summaryText(SUMMARY, { title: 'replay ml-100k', out: 'o.jsonl', next: [] });
    assert.match(replay, /^\nstarstream replay ml-100k summary\n/);
    assert.doesNotMatch(replay, /demo/);
  });

  it('explain hit@10 in one line and end with a next: line', () => {
    const text = summaryText(SUMMARY, { title: 'demo', out: 'o.jsonl', next: ['`starstream replay ml-100k`'] });
    assert.match(text, /streaming hit@10 \(45,000 cases\)\s+0\.200/);
    assert.match(text, /hit@10: the share of cases .* among the 10 recommended/);
    assert.match(text, /\nnext: `starstream replay ml-100k`\n$/);
  });

  it("say the demo's dead letters are its deliberately malformed records, in one row", () => {
    assert.equal(deliberateCount(50_000, MIX), 16, '10 garbage + 6 NaN, none due for both');
    assert.equal(deliberateCount(5_000 * 7_919, MIX), 7_919 + 5_000 - 1, 'a record due for both counts once');
    const text = summaryText(SUMMARY, { title: 'demo', out: 'o', deliberate: { mix: MIX, count: 16 }, next: [] });
    assert.match(text, /dead letters\s+16, all malformed on purpose \(every 5,000th record garbage bytes, every 7,919th a NaN value\)/);
    const more = summaryText({ ...SUMMARY, deadLetters: 18 }, { title: 'demo', out: 'o', deliberate: { mix: MIX, count: 16 }, next: [] });
    assert.match(more, /dead letters\s+18: 16 malformed on purpose .*; 2 others \(see the warnings\)/);
  });

  it('count the malformed lines a replay skipped', () => {
    const text = summaryText(SUMMARY, { title: 'replay x', out: 'o', skippedLines: { count: 2, first: 'line 2: invalid JSON' }, next: [] });
    assert.match(text, /malformed input lines skipped\s+2 \(first: line 2: invalid JSON\)/);
  });
});

describe('replay output file names', () => {
  it('are out/replay-<name>.jsonl with a file-name-safe name', () => {
    assert.equal(replayOutFile('ml-100k'), 'out/replay-ml-100k.jsonl');
    assert.equal(replayOutFile('my events'), 'out/replay-my_events.jsonl');
    assert.equal(replayOutFile('../../etc'), 'out/replay-etc.jsonl');
    assert.equal(replayOutFile('/'), 'out/replay-input.jsonl');
  });
});

describe("the demo's log filter", () => {
  it('hides the dead-letter warnings of deliberately malformed records, counts them, and passes the rest', () => {
    const lines: string[] = [];
    const filter = new DeliberateDeadLetters({ write: (line: string) => lines.push(line) });
    const logger = createLogger('info', filter as Writable);
    logger.warn({ topic: 't', partition: 0, offset: 1, code: 'UNDECODABLE' }, 'dead-lettered');
    logger.warn({ topic: 't', partition: 0, offset: 2, code: 'NON_FINITE_VALUE' }, 'dead-lettered');
    logger.warn({ topic: 't', partition: 0, offset: 3, code: 'SCHEMA_MISMATCH' }, 'dead-lettered');
    logger.info({ users: 3 }, 'store size');
    assert.equal(filter.hidden, 2);
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /"code":"SCHEMA_MISMATCH"/);
    assert.match(lines[1]!, /"msg":"store size"/);
  });
});
