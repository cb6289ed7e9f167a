import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { train, trainCommand } from '../../src/cli/train.ts';

test('starstream train builds the trainer command line and says how to install a missing trainer', async () => {
  const { python, args } = trainCommand({ cases: 'c.jsonl', out: 'm', preset: 'tiny', version: 'v1', set: { epochs: 2, tokenizer: null } });
  assert.match(python, /train\/\.venv\/bin\/python$/);
  assert.deepEqual(args, ['-m', 'starstream_train', 'train', '--cases', 'c.jsonl', '--out', 'm', '--preset', 'tiny', '--version', 'v1', '--set', 'epochs=2', 'tokenizer=none']);
  // An existing cases file, so the missing trainer is what is reported (a missing file is reported first).
  await assert.rejects(train({ cases: fileURLToPath(import.meta.url), out: 'm', python: '/nonexistent/python' }), /train\/install\.sh/);
});
