import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reportFailure } from '../../src/cli/failure.ts';
import { train } from '../../src/cli/train.ts';
import { InputError, UsageError } from '../../src/cli/usage.ts';
import { ConfigError, FatalError, TransientError } from '../../src/errors/index.ts';

/** reportFailure with stderr captured: the exit code and what was written. */
function report(err: unknown): { code: number; text: string } {
  const written: string[] = [];
  const original = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: reportFailure(err), text: written.join('') };
  } finally {
    process.stderr.write = original;
  }
}

describe('reportFailure: the exit-code convention (README "Commands")', () => {
  it('usage, input and config errors: exit 2, one line; a usage error points at the command help', () => {
    assert.deepEqual(report(new UsageError('--events must be a whole number ≥ 1, got "0"', 'demo')), {
      code: 2,
      text: 'starstream: --events must be a whole number ≥ 1, got "0" (see starstream demo --help)\n',
    });
    assert.deepEqual(report(new InputError('replay: x is a file')), { code: 2, text: 'starstream: replay: x is a file\n' });
    assert.equal(report(new ConfigError('store.dimension', 'too small')).code, 2);
    assert.equal(report(new FatalError('DATASET_UNKNOWN_FORMAT', 'no known data set format in /x')).code, 2);
  });

  it('train without the trainer installed is an input error (exit 2), in one line', async () => {
    const err = await train({ cases: fileURLToPath(import.meta.url), out: 'model', python: '/nonexistent/python' }).then(
      () => assert.fail('train resolved'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof FatalError && err.code === 'TRAINER_MISSING');
    const { code, text } = report(err);
    assert.equal(code, 2);
    assert.match(text, /^starstream: \/nonexistent\/python not found: install the trainer with bash train\/install\.sh\n$/);
  });

  it('failures at run time: exit 1, one line with the code; only an unclassified error shows its stack', () => {
    const runtime = report(new TransientError('KAFKA_UNREACHABLE', 'no broker answers'));
    assert.deepEqual(runtime, { code: 1, text: 'starstream: no broker answers [KAFKA_UNREACHABLE]\n' });
    const inUse = report(Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE', port: 9464 }));
    assert.equal(inUse.code, 1);
    assert.match(inUse.text, /^starstream: port 9464 is in use: .*STARSTREAM_OPS__PORT.*\n$/);
    const bug = report(new TypeError('x is undefined'));
    assert.equal(bug.code, 1);
    assert.match(bug.text, /TypeError: x is undefined\n\s+at /);
  });
});
