import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeIssues, validateJson } from '../../../src/teacher/tools/json-schema.ts';

/** The teacher's JSON Schema subset, validated through ajv, with the issue wording the model reads back. */

const RANKING = {
  type: 'object',
  properties: {
    ranking: { type: 'array', items: { type: 'string', enum: ['a', 'b', 'c'] }, minItems: 1, maxItems: 3 },
    confidence: { type: 'number', minimum: 0, maximum: 1 },
    note: { type: 'string', maxLength: 5 },
    turns: { type: 'integer' },
    done: { type: 'boolean' },
    kind: { const: 'rank' },
  },
  required: ['ranking'],
  additionalProperties: false,
} as const;

describe('validateJson (ajv)', () => {
  it('accepts a valid value', () => {
    assert.deepEqual(validateJson(RANKING, { ranking: ['a', 'c'], confidence: 0.5, note: 'ok', turns: 2, done: true, kind: 'rank' }), []);
  });

  it('says what is wrong and where, in the wording the model reads back', () => {
    const issues = validateJson(RANKING, { ranking: ['a', 'z'], confidence: 2, note: 'too long', turns: 1.5, done: 'yes', kind: 'x', extra: 1 });
    assert.deepEqual(
      issues.map((i) => `${i.path}: ${i.message}`),
      [
        '/extra: is not allowed',
        '/ranking/1: must be one of "a", "b", "c"',
        '/confidence: must be <= 1',
        '/note: must have at most 5 characters',
        '/turns: must be an integer',
      ],
    );
    assert.match(describeIssues(issues), /^\/extra: is not allowed; \/ranking\/1: must be one of/);
  });

  it('required, types, sizes, const', () => {
    const messages = (value: unknown): string[] => validateJson(RANKING, value).map((i) => `${i.path || '(root)'}: ${i.message}`);
    assert.deepEqual(messages({}), ['/ranking: is required']);
    assert.deepEqual(messages([]), ['(root): must be an object']);
    assert.deepEqual(messages({ ranking: [] }), ['/ranking: must have at least 1 items']);
    assert.deepEqual(messages({ ranking: 'a' }), ['/ranking: must be an array']);
    assert.deepEqual(messages({ ranking: ['a'], done: 1 }), ['/done: must be a boolean']);
    assert.deepEqual(messages({ ranking: ['a'], kind: 'other' }), ['/kind: must be "rank"']);
  });

  it('keys of Object.prototype are not properties of a schema', () => {
    for (const key of ['constructor', '__proto__', 'toString']) {
      const value = JSON.parse(`{"ranking": ["a"], "${key}": 1}`) as unknown;
      assert.deepEqual(validateJson(RANKING, value), [{ path: `/${key}`, message: 'is not allowed' }], key);
    }
  });

  it('bounds what it reports: at most five issues, keys cut in paths', () => {
    const many = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]));
    assert.equal(validateJson(RANKING, { ranking: ['a'], ...many }).length, 5);
    const [issue] = validateJson(RANKING, { ranking: ['a'], ['k'.repeat(10_000)]: 1 });
    assert.ok(issue && issue.path.length < 50);
  });
});

describe('validateJson with schemas built per case', () => {
  it("validates each against its own schema (ajv's cache is emptied after each compile)", () => {
    // Many one-off schemas validate correctly, each its own enum: no cross-talk between compiled validators.
    for (let i = 0; i < 200; i++) {
      const schema = { type: 'string', enum: [`id${i}`] };
      assert.deepEqual(validateJson(schema, `id${i}`), []);
      assert.equal(validateJson(schema, `id${i + 1}`).length, 1);
    }
  });
});
