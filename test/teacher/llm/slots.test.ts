import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FatalError, TransientError } from '../../../src/errors/index.ts';
import { requestDeadline } from '../../../src/teacher/llm/deadline.ts';
import { Slots } from '../../../src/teacher/llm/llama/slots.ts';

describe('llama sequence slots', () => {
  it('hands slots out first come, first served, and queues the rest', async () => {
    const slots = new Slots(['a']);
    const signal = new AbortController().signal;
    const first = await slots.acquire(signal);
    const order: string[] = [];
    const second = slots.acquire(signal).then((s) => order.push(`second:${s}`));
    const third = slots.acquire(signal).then((s) => order.push(`third:${s}`));
    assert.equal(slots.waiting, 2);
    slots.release(first);
    await second;
    slots.release('a');
    await third;
    assert.deepEqual(order, ['second:a', 'third:a']);
  });

  it('drops a waiter whose signal aborts, with the signal reason', async () => {
    const slots = new Slots([1]);
    const held = await slots.acquire(new AbortController().signal);
    const controller = new AbortController();
    const waiting = slots.acquire(controller.signal);
    controller.abort(new Error('deadline'));
    await assert.rejects(waiting, /deadline/);
    assert.equal(slots.waiting, 0);
    slots.release(held);
    assert.equal(await slots.acquire(new AbortController().signal), 1);
  });

  it('rejects waiters and later acquires once closed', async () => {
    const slots = new Slots([1]);
    await slots.acquire(new AbortController().signal);
    const waiting = slots.acquire(new AbortController().signal);
    const reason = new FatalError('LLM_CLOSED', 'closed');
    slots.close(reason);
    await assert.rejects(waiting, (err) => err === reason);
    await assert.rejects(slots.acquire(new AbortController().signal), (err) => err === reason);
  });
});

describe('request deadline', () => {
  it('names the cause: caller, timeout or close', async () => {
    const caller = new AbortController();
    const closing = new AbortController();
    const byCaller = requestDeadline({ caller: caller.signal, timeoutMs: 10_000, closing: closing.signal });
    caller.abort(new Error('case over'));
    assert.equal(byCaller.cause(), 'caller');
    const err = byCaller.error('x');
    assert.ok(err instanceof TransientError);
    assert.equal(err.code, 'LLM_ABORTED');
    assert.equal((err.cause as Error).message, 'case over');
    byCaller.dispose();

    const byTimeout = requestDeadline({ timeoutMs: 5, closing: closing.signal });
    await new Promise((resolve) => byTimeout.signal.addEventListener('abort', resolve));
    assert.equal(byTimeout.cause(), 'timeout');
    assert.equal(byTimeout.error('x').code, 'LLM_TIMEOUT');
    byTimeout.dispose();

    const byClose = requestDeadline({ timeoutMs: 10_000, closing: closing.signal });
    assert.equal(byClose.cause(), null);
    closing.abort();
    assert.equal(byClose.cause(), 'closed');
    assert.ok(byClose.error('x') instanceof FatalError);
    byClose.dispose();
  });
});
