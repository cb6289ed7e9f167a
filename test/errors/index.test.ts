import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BadInputError,
  ConfigError,
  FatalError,
  StarstreamError,
  TransientError,
  errorCode,
  errorMessage,
  isRetriable,
} from '../../src/errors/index.ts';

describe('error taxonomy', () => {
  it('marks only transient errors as retriable', () => {
    const transient = new TransientError('BROKER_BUSY', 'busy');
    const bad = new BadInputError('BAD_ID', 'bad');
    const fatal = new FatalError('AUTH', 'denied');
    const config = new ConfigError('store.dimension', 'too small');
    assert.equal(transient.retriable, true);
    assert.equal(bad.retriable, false);
    assert.equal(fatal.retriable, false);
    assert.equal(config.retriable, false);
    assert.deepEqual([transient, bad, fatal, config].map(isRetriable), [true, false, false, false]);
    assert.deepEqual([transient, bad, fatal, config].map((e) => e.family), ['transient', 'bad-input', 'fatal', 'fatal']);
  });

  it('treats anything unclassified as not retriable and UNCLASSIFIED', () => {
    const unknown: unknown[] = [new Error('boom'), new TypeError('x'), 'a string', 42, null, undefined, { code: 'ECONNRESET', retriable: true }];
    for (const err of unknown) {
      assert.equal(isRetriable(err), false, String(err));
      assert.equal(errorCode(err), 'UNCLASSIFIED', String(err));
    }
  });

  it('carries a stable code, the class name, the message and the cause', () => {
    const cause = new Error('socket hang up');
    const err = new TransientError('STORE_UNAVAILABLE', 'qdrant is down', { cause });
    assert.ok(err instanceof StarstreamError);
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'STORE_UNAVAILABLE');
    assert.equal(errorCode(err), 'STORE_UNAVAILABLE');
    assert.equal(err.name, 'TransientError');
    assert.equal(err.message, 'qdrant is down');
    assert.equal(err.cause, cause);
    assert.equal(new BadInputError('X', 'y').name, 'BadInputError');
  });

  it('gives ConfigError the field and a message that names it', () => {
    const err = new ConfigError('eventLog.kafka.brokers', 'must not be empty');
    assert.equal(err.field, 'eventLog.kafka.brokers');
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(err.name, 'ConfigError');
    assert.match(err.message, /eventLog\.kafka\.brokers/);
    assert.match(err.message, /must not be empty/);
  });

  it('errorMessage reads Errors and stringifies the rest', () => {
    assert.equal(errorMessage(new Error('m')), 'm');
    assert.equal(errorMessage('plain'), 'plain');
    assert.equal(errorMessage(7), '7');
    assert.equal(errorMessage(undefined), 'undefined');
  });
});
