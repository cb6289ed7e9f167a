import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configDocs } from '../../src/cli/config.ts';
import { configFromEnv, loadConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';

interface Row {
  readonly field: string;
  readonly env: string;
  readonly defaultText: string;
  readonly description: string;
}

function rows(): Row[] {
  const lines = configDocs().trimEnd().split('\n');
  assert.equal(lines[0], '| field | env | default | description |');
  return lines.slice(2).map((line) => {
    const m = /^\| `([^`]+)` \| `([^`]+)` \| (.*?) \| (.*) \|$/.exec(line);
    assert.ok(m, `row has four columns: ${line}`);
    return { field: m[1]!, env: m[2]!, defaultText: m[3]!, description: m[4]! };
  });
}

/** Leaf paths of a plain value; arrays are leaves (a list is one field). */
function leaves(value: unknown, path: string[] = []): string[] {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, k]));
  }
  return [path.join('.')];
}

function get(value: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], value);
}

/** Fields without a default (optional in the schema), which the defaults cannot show. */
const OPTIONAL_FIELDS = [
  'eventLog.topics.minInSyncReplicas',
  'eventLog.kafka.sasl.mechanism',
  'eventLog.kafka.sasl.username',
  'eventLog.kafka.sasl.password',
  'eventLog.kafka.schemaRegistryUrl',
  'eventLog.kafka.sslCaFile',
  'eventLog.kafka.sslCertFile',
  'eventLog.kafka.sslKeyFile',
  'store.embedded.path',
  'store.qdrant.apiKey',
  'ranking.modelDir',
  'teacher.llm.modelPath',
  'teacher.llm.model',
  'teacher.llm.apiKey',
  'distill.trajectoriesDir',
  'distill.casesFile',
  'distill.registryDir',
  'distill.python',
  'ops.apiToken',
];

/**
 * Optional sections (unset by default, so the defaults cannot show their fields): a minimal valid value, from
 * which the leaves and the defaults of the section's fields are read. Its required fields, and its optional
 * ones without a default, show none.
 */
const MINIMAL_SECTIONS: ConfigInput = {
  experiment: { name: 'e', salt: 's', arms: [{ name: 'a', scorer: { kind: 'baseline' }, share: 0.5 }, { name: 'b', scorer: { kind: 'online' }, share: 0.5 }] },
};
const SECTION_REQUIRED_FIELDS = ['experiment.name', 'experiment.salt', 'experiment.arms', 'experiment.champion', 'experiment.instance'];

describe('configDocs', () => {
  it('lists every leaf field of the schema exactly once', () => {
    const documented = rows().map((r) => r.field);
    assert.equal(new Set(documented).size, documented.length, 'no field twice');
    // A record field (free-form keys) has no leaves while empty, but is one documented field.
    const records = ['distill.trainerSettings'];
    const sections = leaves(loadConfig({ overrides: MINIMAL_SECTIONS })).filter((f) => Object.keys(MINIMAL_SECTIONS).includes(f.split('.')[0]!));
    const expected = [...new Set([...leaves(loadConfig()), ...OPTIONAL_FIELDS, ...records, ...sections, ...SECTION_REQUIRED_FIELDS])].sort();
    assert.deepEqual([...documented].sort(), expected);
  });

  it('gives each field the env name that maps back to exactly that field', () => {
    for (const row of rows()) {
      assert.ok(row.env.startsWith('STARSTREAM_'), row.env);
      let mapped: Record<string, unknown>;
      try {
        mapped = configFromEnv({ [row.env]: 'probe' });
      } catch (err) {
        assert.fail(`${row.env} (for ${row.field}) cannot be set: ${String(err)}`);
      }
      assert.deepEqual(leaves(mapped), [row.field], `${row.env} sets ${row.field}`);
      assert.equal(get(mapped, row.field), 'probe');
    }
  });

  it('gives the env name of every field that is not a *File path, and those map back to the field', () => {
    for (const row of rows().filter((r) => !r.field.endsWith('File'))) {
      const mapped = configFromEnv({ [row.env]: '"probe"' });
      assert.deepEqual(leaves(mapped), [row.field], `${row.env} sets ${row.field}`);
    }
  });

  it('shows the schema default of every field that has one, and "unset" for optional ones', () => {
    const defaults = loadConfig({ overrides: MINIMAL_SECTIONS });
    for (const row of rows()) {
      const value = get(defaults, row.field);
      if (OPTIONAL_FIELDS.includes(row.field) || SECTION_REQUIRED_FIELDS.includes(row.field)) {
        assert.ok(row.defaultText === 'unset' || row.defaultText === '—', `${row.field}: ${row.defaultText}`);
      } else {
        assert.equal(row.defaultText, `\`${JSON.stringify(value)}\``, row.field);
      }
    }
  });

  it('describes every field', () => {
    const undocumented = rows().filter((r) => r.description.length === 0).map((r) => r.field);
    assert.deepEqual(undocumented, []);
  });
});
