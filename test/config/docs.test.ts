import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { configDocs } from '../../src/cli/config.ts';

test('docs/configuration.md lists exactly what the config schema defines', () => {
  const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const table = doc.slice(doc.indexOf('| field |'));
  assert.equal(table, configDocs(), 'regenerate the table with: node bin/starstream.js config docs');
});
