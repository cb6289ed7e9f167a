import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { scanSources } from '../../src/distill/sources.ts';
import { chooseWindow, writeTrainingInput } from '../../src/distill/split.ts';
import type { CaseOutcome, LabelledTrajectory } from '../../src/domain/teacher.ts';
import { FatalError } from '../../src/errors/index.ts';
import { labelledIssue, labelTrajectory } from '../../src/teacher/dataset/label.ts';
import { DatasetWriter, MANIFEST_FILE, parseManifest } from '../../src/teacher/dataset/writer.ts';
import { decodeTrajectory, TRAJECTORY_HEADERS, TRAJECTORY_SCHEMA } from '../../src/teacher/trajectories/codec.ts';
import { T0, teacherCase, trajectory } from '../teacher/case-fixtures.ts';
import { expectTaxonomy, fuzz, fuzzAsync, HOSTILE_PIECES } from './fuzz.ts';
import { applyJsonMutations, jsonMutation } from './json-mutation.ts';

/**
 * The teacher's data set files as they are read back (`src/teacher/dataset/writer.ts` writes them): by the
 * distillation loop (`scanSources`, `chooseWindow`, `writeTrainingInput` in `src/distill/`), by the writer
 * itself when it takes up the parts a crash left open, and trajectory records off the trajectories topic
 * (`decodeTrajectory`), which the labeller writes into the data set. The Python reader has the same property
 * in train/tests/test_labelled_fuzz.py.
 *
 * Thrown at them: data sets the real writer wrote, then lines mutated (values replaced by hostile JSON, keys
 * deleted, wrong types), truncated, spliced, with non-UTF-8 bytes, a BOM, 100k-deep nesting, raw huge numbers,
 * repeated caseIds; manifests that lie (list missing files or paths out of the directory, another schema
 * version, not JSON, not an object, counts that are not counts, splits that are not splits).
 *
 * Contract: a valid value (every record handed on passes `labelledIssue`, every listed part is a file inside
 * the directory) or a `FatalError` of the reader's codes whose message names the file (and, for a line, its
 * number); never a raw TypeError, RangeError or SyntaxError, never a read outside the directory.
 */

const root = mkdtempSync(join(tmpdir(), 'trajectory-fuzz-'));
after(() => rmSync(root, { recursive: true, force: true }));
let seq = 0;
const newDir = (): string => {
  const d = join(root, `d${seq++}`);
  mkdirSync(d);
  return d;
};

const ITEMS = ['a', 'b', 'c', 'd', 'e'];
function record(i: number): LabelledTrajectory {
  // Hostile ids and titles inside: they are data, and must survive the round trip.
  const c = teacherCase(`u${i}${HOSTILE_PIECES[i % HOSTILE_PIECES.length]}`, T0 + i * 60_000, ITEMS, { reason: (['uniform', 'uncertain', 'cold-user', 'long-tail'] as const)[i % 4] });
  const ranking = [...ITEMS.slice(i % 5), ...ITEMS.slice(0, i % 5)];
  const outcome: CaseOutcome =
    i % 7 === 6 ? { status: 'expired', horizonMs: 1_800_000 } : { status: 'observed', nextItemId: i % 5 === 4 ? 'zzz' : 'a', observedAtMs: c.atMs + 1_000, studentRank: i % 5 === 4 ? null : 1 };
  return labelTrajectory(trajectory(c.caseId, ranking, i % 11 === 10 ? 'failed' : 'completed'), { case: c, outcome });
}
const RECORDS = Array.from({ length: 12 }, (_, i) => record(i));
const LINES = RECORDS.map((r) => JSON.stringify(r));
const FILTER = { keep: 'all', k: 3 } as const;

/** A data set the real writer wrote: its manifest text and its parts' lines. */
let template: { manifest: string; parts: { name: string; lines: string[] }[] };
before(async () => {
  const d = newDir();
  const w = await DatasetWriter.open({ dir: d, maxRecordsPerFile: 4, filter: FILTER, clock: () => T0 });
  await w.write(RECORDS);
  await w.close();
  const manifest = readFileSync(join(d, MANIFEST_FILE), 'utf8');
  const parts = parseManifest(manifest, 'template').files.map((f) => ({ name: f.path, lines: readFileSync(join(d, f.path), 'utf8').split('\n').filter((l) => l !== '') }));
  template = { manifest, parts };
});

const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

/** One line of a part: as written, mutated, or broken every way a file breaks. */
const line: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...LINES).map((l) => Buffer.from(l)) },
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...RECORDS), fc.array(jsonMutation, { minLength: 1, maxLength: 3 })).map(([r, m]) => Buffer.from(JSON.stringify(applyJsonMutations(r, m)))) },
  {
    weight: 3,
    arbitrary: fc.tuple(fc.constantFrom(...LINES), fc.constantFrom(...LINES), fc.nat(), fc.nat(), fc.nat({ max: 6 })).map(([l, other, at, at2, kind]) => {
      const b = Buffer.from(l);
      switch (kind) {
        case 0:
          return b.subarray(0, at % b.length); // truncated, maybe inside a UTF-8 sequence
        case 1:
          return Buffer.concat([b.subarray(0, at % b.length), Buffer.from(other).subarray(at2 % other.length)]); // spliced
        case 2: {
          const c = Buffer.from(b);
          c[at % c.length] = [0xff, 0xc3, 0x80, 0xed][at2 % 4]!; // not UTF-8
          return c;
        }
        case 3:
          return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]); // BOM
        case 4:
          return Buffer.from(l.replace('"atMs":', `"atMs":${['1e999', '-1e999', '123456789012345678901234567890', '-0', '0.5'][at % 5]},"x":`)); // raw huge numbers
        case 5:
          return Buffer.from(deep(100_000));
        default:
          return Buffer.from(l.replace(/"itemId":"[a-e]"/, '"itemId":["a"]')); // a wrong type deep inside
      }
    }),
  },
  { weight: 1, arbitrary: fc.oneof(fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a.map((x) => (x === 0x0a ? 0x20 : x)))), fc.json().map((j) => Buffer.from(j)), fc.constantFrom('', ' ', '\r', 'null', '{}', '[]').map((s) => Buffer.from(s))) },
);

interface PartSpec {
  readonly split: 'kept' | 'rejected';
  readonly lines: readonly Buffer[];
  readonly duplicate: boolean;
  readonly eol: string;
  /** For the writer: left as a final part the manifest does not list yet, rather than `.open`. */
  readonly final: boolean;
}
const partSpec: fc.Arbitrary<PartSpec> = fc.record({
  split: fc.constantFrom('kept' as const, 'rejected' as const),
  lines: fc.array(line, { maxLength: 5 }),
  duplicate: fc.boolean(),
  eol: fc.constantFrom('\n', '\r\n'),
  final: fc.boolean(),
});
const partBytes = (p: PartSpec): Buffer => {
  const lines = p.duplicate && p.lines.length ? [...p.lines, p.lines[0]!] : p.lines;
  return Buffer.concat(lines.flatMap((l) => [l, Buffer.from(p.eol)]));
};

/** A manifest: the one that lists the parts, mutated, or lying outright. */
const manifestKind = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'valid' as const }) },
  { weight: 3, arbitrary: fc.array(jsonMutation, { minLength: 1, maxLength: 3 }).map((mutations) => ({ kind: 'mutated' as const, mutations })) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('lie' as const),
      lie: fc.constantFrom('missing', 'outside', 'absolute', 'dotdot', 'version', 'notJson', 'null', 'bom', 'notUtf8', 'deep', 'split', 'records', 'filesNotArray', 'noManifestButFiles'),
    }),
  },
);
type ManifestKind = typeof manifestKind extends fc.Arbitrary<infer T> ? T : never;

function manifestFor(names: readonly { name: string; split: string; records: number }[], m: ManifestKind): Buffer | null {
  const base = JSON.parse(template.manifest) as { files: Record<string, unknown>[] } & Record<string, unknown>;
  base.files = names.map((n) => ({ path: n.name, split: n.split, records: n.records, fromMs: T0, toMs: T0 }));
  if (m.kind === 'valid') return Buffer.from(JSON.stringify(base));
  if (m.kind === 'mutated') return Buffer.from(JSON.stringify(applyJsonMutations(base, m.mutations)));
  const file = (path: string) => ({ path, split: 'kept', records: 1, fromMs: T0, toMs: T0 });
  switch (m.lie) {
    case 'missing':
      base.files.push(file('kept-999999.jsonl'));
      break;
    case 'outside':
      base.files.push(file('../d0/manifest.json'));
      break;
    case 'absolute':
      base.files.push(file('/etc/passwd'));
      break;
    case 'dotdot':
      base.files.push(file('..'));
      break;
    case 'version':
      base.schemaVersion = 'labelled-trajectory-2';
      break;
    case 'notJson':
      return Buffer.from(JSON.stringify(base).slice(0, 30));
    case 'null':
      return Buffer.from('null');
    case 'bom':
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(base))]);
    case 'notUtf8':
      return Buffer.concat([Buffer.from(JSON.stringify(base).slice(0, -1)), Buffer.from(',"x":"\xff"}', 'latin1')]);
    case 'deep':
      return Buffer.from(`{"files":${deep(100_000)}}`);
    case 'split':
      for (const f of base.files) f.split = 'kept ';
      break;
    case 'records':
      for (const f of base.files) f.records = '3';
      break;
    case 'filesNotArray':
      (base as Record<string, unknown>).files = 'kept-000001.jsonl';
      break;
    case 'noManifestButFiles':
      return null;
  }
  return Buffer.from(JSON.stringify(base));
}

/** Writes a data set: final parts and a manifest. */
function dataset(parts: readonly PartSpec[], m: ManifestKind): string {
  const d = newDir();
  const counters = { kept: 0, rejected: 0 };
  const listed: { name: string; split: string; records: number }[] = [];
  for (const p of parts) {
    const name = `${p.split}-${String(++counters[p.split]).padStart(6, '0')}.jsonl`;
    writeFileSync(join(d, name), partBytes(p));
    listed.push({ name, split: p.split, records: p.lines.length });
  }
  const manifest = manifestFor(listed, m);
  if (manifest) writeFileSync(join(d, MANIFEST_FILE), manifest);
  return d;
}

/** A reader's error: one of its codes, naming the data set's directory (and a line's number). */
function expectReaderError(err: unknown, codes: readonly string[], dir: string): FatalError {
  const e = expectTaxonomy(err, { family: 'fatal', codes, type: FatalError }) as FatalError;
  assert.ok(e.message.includes(dir), `the error names the file: ${e.message.slice(0, 300)}`);
  if (e.code === 'DISTILL_INPUT_INVALID') assert.match(e.message, /\.jsonl:\d+: /, 'a line error names the line');
  if (e.code === 'DATASET_CORRUPT') assert.match(e.message, /\.jsonl\.open: line \d+|parts? /, 'names the line, or the part that does not fit');
  assert.ok(e.message.length < 2_000, 'a bounded message');
  return e;
}

describe('fuzz: trajectory data set files', () => {
  it('distill: a data set gives training input whose every record is valid, or DISTILL_*_INVALID naming the file', async () => {
    await fuzzAsync(
      fc.asyncProperty(fc.array(partSpec, { minLength: 1, maxLength: 3 }), manifestKind, fc.constantFrom(0.01, 0.3, 1), async (parts, m, share) => {
        const d = dataset(parts, m);
        const paths = { trajectoriesDir: d, casesFile: null };
        try {
          const state = await scanSources(paths);
          for (const p of state.parts) {
            assert.ok(resolve(d, p.path).startsWith(`${d}/`) && existsSync(join(d, p.path)), `a listed part is a file in the data set: ${p.path}`);
            assert.ok(p.split === 'kept' || p.split === 'rejected');
          }
          const window = await chooseWindow(paths, state, share);
          if (!window) return;
          assert.ok(Number.isFinite(window.cutoffMs));
          const input = await writeTrainingInput(paths, state, window, join(d, 'out'));
          if (input.trajectoriesFile) {
            const written = readFileSync(input.trajectoriesFile, 'utf8').split('\n').filter((l) => l !== '');
            assert.equal(written.length, input.counts.trajectories.trained);
            const ids = new Set<string>();
            for (const l of written) {
              const r = JSON.parse(l) as LabelledTrajectory;
              assert.equal(labelledIssue(r), null, 'a trained record is valid');
              assert.ok(!ids.has(r.case.caseId), 'each caseId once');
              ids.add(r.case.caseId);
              assert.ok(r.case.atMs < window.cutoffMs, 'trained on the past only');
            }
          }
          const times = input.evalCases.map((c) => c.atMs);
          assert.deepEqual(times, [...times].sort((a, b) => a - b));
        } catch (err) {
          expectReaderError(err, ['DISTILL_DATASET_INVALID', 'DISTILL_INPUT_INVALID'], d);
        }
      }),
      { seed: 9_700, numRuns: 200 },
    );
  });

  it('the writer takes up a data set a crash (or someone else) left: a writer that writes on, or DATASET_* naming the file', async () => {
    await fuzzAsync(
      fc.asyncProperty(fc.array(partSpec, { minLength: 1, maxLength: 2 }), manifestKind, async (parts, m) => {
        // The template's listed parts, plus the new parts left open after them.
        const d = newDir();
        for (const p of template.parts) writeFileSync(join(d, p.name), `${p.lines.join('\n')}\n`);
        const listed = parseManifest(template.manifest, 'template').files;
        const next = { kept: listed.filter((f) => f.split === 'kept').length, rejected: listed.filter((f) => f.split === 'rejected').length };
        const seen = new Set<string>();
        for (const p of parts) {
          if (seen.has(p.split)) continue; // one open part per split
          seen.add(p.split);
          const name = `${p.split}-${String(next[p.split] + 1).padStart(6, '0')}.jsonl`;
          writeFileSync(join(d, p.final ? name : `${name}.open`), partBytes(p));
        }
        const manifest = m.kind === 'valid' ? Buffer.from(template.manifest) : manifestFor(listed.map((f) => ({ name: f.path, split: f.split, records: f.records })), m);
        if (manifest) writeFileSync(join(d, MANIFEST_FILE), manifest);
        let writer: DatasetWriter;
        try {
          writer = await DatasetWriter.open({ dir: d, maxRecordsPerFile: 3, filter: FILTER, clock: () => T0 });
        } catch (err) {
          expectReaderError(err, ['DATASET_INVALID', 'DATASET_VERSION', 'DATASET_FILTER', 'DATASET_CORRUPT'], d);
          return;
        }
        // Taken up: it writes on, and every record in what it leaves is valid. (The writer trusts the files a
        // parseable manifest lists; one that lists a missing file stays refused by the readers, by name.)
        await writer.write(RECORDS.slice(0, 4));
        await writer.close();
        const files = parseManifest(readFileSync(join(d, MANIFEST_FILE), 'utf8'), 'after').files.filter((f) => existsSync(join(d, f.path)));
        assert.ok(files.length > 0);
        for (const f of files) {
          for (const l of readFileSync(join(d, f.path), 'utf8').split('\n').filter((x) => x !== '')) {
            assert.equal(labelledIssue(JSON.parse(l)), null, `a record in ${f.path} is valid`);
          }
        }
        await scanSources({ trajectoriesDir: d, casesFile: null }).catch((err: unknown) => {
          assert.ok(m.kind !== 'valid', 'a valid data set stays readable');
          assert.match(expectReaderError(err, ['DISTILL_DATASET_INVALID'], d).message, /which is not there/);
        });
        // (A manifest that lists more files than there are points the writer at later part numbers.)
        if (m.kind === 'valid') assert.ok(!readdirSync(d).some((n) => n.endsWith('.open')), 'no part left open after close');
      }),
      { seed: 9_800, numRuns: 120 },
    );
  });

  it('trajectory records off the topic: a Trajectory the data set accepts once labelled, or UNDECODABLE', () => {
    const valid = RECORDS.map((r) => r.trajectory);
    const value = fc.oneof(
      { weight: 2, arbitrary: fc.constantFrom(...valid).map((t) => Buffer.from(JSON.stringify(t))) },
      { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...valid), fc.array(jsonMutation, { minLength: 1, maxLength: 3 })).map(([t, m]) => Buffer.from(JSON.stringify(applyJsonMutations(t, m)))) },
      { weight: 2, arbitrary: line },
    );
    const headers = fc.constantFrom<Record<string, Buffer>>({}, { [TRAJECTORY_HEADERS.schema]: Buffer.from(TRAJECTORY_SCHEMA) }, { [TRAJECTORY_HEADERS.schema]: Buffer.from('starstream.trajectory.v2') }, { [TRAJECTORY_HEADERS.schema]: Buffer.from([0xff]) });
    fuzz(
      fc.property(value, headers, (bytes, h) => {
        let t;
        try {
          t = decodeTrajectory({ value: bytes, headers: h });
        } catch (err) {
          expectTaxonomy(err, { family: 'bad-input', codes: ['UNDECODABLE'] });
          return;
        }
        // The labeller pairs it with its case and writes it: the data set's readers must accept that line.
        const c = { ...RECORDS[0]!.case, caseId: t.caseId };
        const labelled = labelTrajectory(t, { case: c, outcome: { status: 'observed', nextItemId: 'a', observedAtMs: T0, studentRank: 1 } });
        assert.equal(labelledIssue(JSON.parse(JSON.stringify(labelled))), null, 'what the labeller writes, the readers read');
      }),
      { seed: 9_900, numRuns: 300 },
    );
  });

  it('regressions: lines and manifests that made a reader throw a TypeError or SyntaxError, or read outside', async () => {
    const cases: [string, (d: string) => Promise<unknown>, (d: string) => void, string][] = [
      // distill: a candidate that is not an object reached `c.itemId` (TypeError)
      ['candidate not an object', (d) => scanThenSplit(d), (d) => part(d, LINES[0]!.replace('"candidates":[{', '"candidates":[null,{')), 'DISTILL_INPUT_INVALID'],
      // distill: a manifest of `null` (TypeError reading schemaVersion), files not a list (not iterable)
      ['manifest null', (d) => scanThenSplit(d), (d) => part(d, LINES[0]!, 'null'), 'DISTILL_DATASET_INVALID'],
      ['files not a list', (d) => scanThenSplit(d), (d) => part(d, LINES[0]!, JSON.stringify({ ...JSON.parse(template.manifest), files: 'x' })), 'DISTILL_DATASET_INVALID'],
      // distill: a manifest listing a file out of the directory was read
      ['path outside', (d) => scanThenSplit(d), (d) => part(d, LINES[0]!, JSON.stringify({ ...JSON.parse(template.manifest), files: [{ path: '../x.jsonl', split: 'kept', records: 1, fromMs: 0, toMs: 0 }] })), 'DISTILL_DATASET_INVALID'],
      // writer: a manifest that is not JSON (SyntaxError), or null (TypeError)
      ['writer manifest not JSON', (d) => DatasetWriter.open({ dir: d, maxRecordsPerFile: 3, filter: FILTER }), (d) => writeFileSync(join(d, MANIFEST_FILE), '{"schemaVersion":'), 'DATASET_INVALID'],
      ['writer manifest null', (d) => DatasetWriter.open({ dir: d, maxRecordsPerFile: 3, filter: FILTER }), (d) => writeFileSync(join(d, MANIFEST_FILE), 'null'), 'DATASET_INVALID'],
      // writer: an open part with a JSON line that is not a record (TypeError in the accounting)
      ['writer open part', (d) => DatasetWriter.open({ dir: d, maxRecordsPerFile: 3, filter: FILTER }), (d) => writeFileSync(join(d, 'kept-000001.jsonl.open'), `${LINES[0]}\n[1]\n`), 'DATASET_CORRUPT'],
    ];
    for (const [name, read, prepare, code] of cases) {
      const d = newDir();
      prepare(d);
      await assert.rejects(read(d), (err) => expectReaderError(err, [code], d) !== null, name);
    }
    // The writer's recovery cut an open part at the wrong byte when a blank line came before a record: the
    // record lost its last byte and the next append ran into it, one broken line in a final part.
    const d = newDir();
    writeFileSync(join(d, 'kept-000001.jsonl.open'), `\n${LINES[0]}\n\n${LINES[1]}\n{"torn`);
    const w = await DatasetWriter.open({ dir: d, maxRecordsPerFile: 10, filter: FILTER });
    await w.write([RECORDS[2]!]);
    await w.close();
    const kept = readFileSync(join(d, 'kept-000001.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
    assert.deepEqual(kept, [LINES[0], LINES[1], LINES[2]]);
    // A byte that is not UTF-8 inside a good line reads as U+FFFD (3 bytes): the cut ran past the end of the
    // part and padded it with a NUL, which the next append ran into.
    const d2 = newDir();
    const damaged = Buffer.from(`${LINES[0]}\n${LINES[1]}\n{"torn`);
    damaged[LINES[0]!.indexOf('"Title a"') + 2] = 0xff;
    writeFileSync(join(d2, 'kept-000001.jsonl.open'), damaged);
    const w2 = await DatasetWriter.open({ dir: d2, maxRecordsPerFile: 10, filter: FILTER });
    await w2.write([RECORDS[2]!]);
    await w2.close();
    const lines2 = readFileSync(join(d2, 'kept-000001.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
    assert.deepEqual(lines2.slice(1), [LINES[1], LINES[2]]);
    assert.equal(labelledIssue(JSON.parse(lines2[0]!)), null);
    // A manifest that lists fewer parts than there are: the writer appended to a stale open part of a later
    // number (its lines went into a final part), or would rename over a final one.
    const d3 = newDir();
    writeFileSync(join(d3, 'kept-000002.jsonl.open'), 'stale\n');
    await assert.rejects(DatasetWriter.open({ dir: d3, maxRecordsPerFile: 10, filter: FILTER }), (err) => expectReaderError(err, ['DATASET_CORRUPT'], d3) !== null);
    // The topic codec: a ranking of non-ids was accepted, then refused by every reader of the data set.
    const bad = { ...RECORDS[0]!.trajectory, ranking: [1, {}] };
    assert.throws(() => decodeTrajectory({ value: Buffer.from(JSON.stringify(bad)), headers: {} }), (err) => expectTaxonomy(err, { family: 'bad-input', codes: ['UNDECODABLE'] }) !== null);
  });
});

function part(d: string, l: string, manifest?: string): void {
  writeFileSync(join(d, 'kept-000001.jsonl'), `${l}\n`);
  writeFileSync(join(d, MANIFEST_FILE), manifest ?? JSON.stringify({ ...JSON.parse(template.manifest), files: [{ path: 'kept-000001.jsonl', split: 'kept', records: 1, fromMs: 0, toMs: 0 }] }));
}

async function scanThenSplit(d: string): Promise<void> {
  const paths = { trajectoriesDir: d, casesFile: null };
  const state = await scanSources(paths);
  const window = await chooseWindow(paths, state, 0.5);
  if (window) await writeTrainingInput(paths, state, window, join(d, 'out'));
}
