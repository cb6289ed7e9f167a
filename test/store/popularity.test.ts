import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decayedCount,
  decayTauMs,
  EMPTY_LOG_SUM,
  logAddEvent,
  logAddExp,
} from '../../src/store/popularity.ts';

const DAY = 86_400_000;
const NOW = 1_760_000_000_000; // 2025-10, realistic epoch ms

function close(actual: number, expected: number, relative = 1e-9): void {
  assert.ok(
    Math.abs(actual - expected) <= relative * Math.max(1, Math.abs(expected)),
    `expected ${expected}, got ${actual}`,
  );
}

describe('popularity (log-space decayed counts)', () => {
  it('logAddExp: -Infinity is the identity, equal inputs add ln 2, no overflow at large values', () => {
    assert.equal(logAddExp(EMPTY_LOG_SUM, EMPTY_LOG_SUM), EMPTY_LOG_SUM);
    assert.equal(logAddExp(EMPTY_LOG_SUM, 5), 5);
    assert.equal(logAddExp(5, EMPTY_LOG_SUM), 5);
    close(logAddExp(13_600, 13_600), 13_600 + Math.LN2, 1e-15);
    close(logAddExp(0, Math.log(3)), Math.log(4), 1e-15);
  });

  it('τ = halfLife / ln 2', () => {
    close(decayTauMs(DAY), DAY / Math.LN2, 1e-15);
  });

  it('an event counts 1 at its own time and halves every half-life', () => {
    for (const halfLife of [DAY, 30 * DAY]) {
      const l = logAddEvent(EMPTY_LOG_SUM, NOW, halfLife);
      close(decayedCount(l, NOW, halfLife), 1);
      close(decayedCount(l, NOW + halfLife, halfLife), 0.5);
      close(decayedCount(l, NOW + 3 * halfLife, halfLife), 0.125);
    }
  });

  it('an empty counter reads 0; count <= 0 changes nothing; count n equals n events', () => {
    assert.equal(decayedCount(EMPTY_LOG_SUM, NOW, DAY), 0);
    assert.equal(logAddEvent(EMPTY_LOG_SUM, NOW, DAY, 0), EMPTY_LOG_SUM);
    let three = EMPTY_LOG_SUM;
    for (let i = 0; i < 3; i++) three = logAddEvent(three, NOW, DAY);
    close(logAddEvent(EMPTY_LOG_SUM, NOW, DAY, 3), three, 1e-15);
    close(decayedCount(three, NOW, DAY), 3);
  });

  it('keeps precision at epoch-ms times with a one-day half-life (log values ~ 10^4)', () => {
    let l = EMPTY_LOG_SUM;
    for (let i = 0; i < 1000; i++) l = logAddEvent(l, NOW - i * 1000, DAY);
    let expected = 0;
    for (let i = 0; i < 1000; i++) expected += 2 ** (-(i * 1000) / DAY);
    close(decayedCount(l, NOW, DAY), expected, 1e-9);
  });

  it('adding events commutes: any order gives the same log-sum', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ at: fc.integer({ min: 0, max: 60 * DAY }), n: fc.integer({ min: 1, max: 5 }) }),
          {
            minLength: 1,
            maxLength: 20,
          },
        ),
        fc.integer(),
        (events, seed) => {
          const fold = (list: typeof events) =>
            list.reduce((l, e) => logAddEvent(l, NOW + e.at, DAY, e.n), EMPTY_LOG_SUM);
          const shuffled = [...events].sort((a, b) => ((a.at * 31 + seed) % 97) - ((b.at * 31 + seed) % 97));
          close(fold(shuffled), fold(events), 1e-12);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('ranking by log-sum equals ranking by decayed count at any read time', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 90 * DAY }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 0, max: 90 * DAY }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 365 * DAY }),
        (a, b, readAt) => {
          const la = a.reduce((l, t) => logAddEvent(l, NOW + t, 30 * DAY), EMPTY_LOG_SUM);
          const lb = b.reduce((l, t) => logAddEvent(l, NOW + t, 30 * DAY), EMPTY_LOG_SUM);
          const ca = decayedCount(la, NOW + readAt, 30 * DAY);
          const cb = decayedCount(lb, NOW + readAt, 30 * DAY);
          if (la > lb) assert.ok(ca >= cb);
          if (la < lb) assert.ok(ca <= cb);
        },
      ),
      { numRuns: 200 },
    );
  });
});
