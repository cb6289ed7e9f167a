import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { TimeHeap } from '../../src/data/time-heap.ts';

describe('TimeHeap', () => {
  it('always yields the earliest time, ties by smaller id, across top updates (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 100 }),
        (initial, updates) => {
          const times = Float64Array.from(initial);
          const heap = new TimeHeap(times, initial.length);
          initial.forEach((_, id) => heap.push(id));
          const earliest = (): number => {
            let best = 0;
            for (let id = 1; id < times.length; id++) if (times[id]! < times[best]!) best = id;
            return best;
          };
          for (const delta of updates) {
            assert.equal(heap.peek(), earliest());
            heap.updateTop(times[heap.peek()]! + delta);
          }
          const popped: number[] = [];
          while (heap.size > 0) popped.push(heap.pop());
          const expected = [...popped].sort((a, b) => times[a]! - times[b]! || a - b);
          assert.deepEqual(popped, expected);
          assert.equal(heap.pop(), -1);
        },
      ),
    );
  });
});
