import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { COMMANDS } from '../../src/cli/usage.ts';
import { plainLines, starstream, type Run } from './helpers.ts';

/**
 * The command line guides: help exits 0, every mistake is one line on stderr with exit 2 that names the flag,
 * value or file and what would be right. All runs start at once (each CLI start costs seconds on a busy machine).
 */

const dir = mkdtempSync(join(tmpdir(), 'starstream-usage-'));
const csv = join(dir, 'events.csv');
const empty = join(dir, 'empty');
const sheet = join(dir, 'data.xlsx');
writeFileSync(csv, 'user,item\nu1,i1\n');
writeFileSync(sheet, 'not a table');
mkdirSync(empty);

const CASES = {
  help: ['--help'],
  helpWord: ['help', 'replay'],
  none: [],
  demoHelp: ['demo', '--help'],
  replayHelp: ['replay', '-h'],
  typo: ['demo', '--event', '1000'],
  zero: ['demo', '--events', '0'],
  notANumber: ['demo', '--users', 'many'],
  otherCommandsFlag: ['run', '--events', '5'],
  unknownCommand: ['dmeo'],
  missingValue: ['config', 'check', '--config'],
  subcommandTypo: ['topics', 'creat'],
  dataset: ['eval', '--dataset', 'nope'],
  datasetTypo: ['eval', '--dataset', 'ml100k'],
  replayFile: ['replay', csv],
  replayUnknownKind: ['replay', sheet],
  mapTypo: ['validate', csv, '--map', 'usr=user'],
  mapColumnTypo: ['replay', csv, '--map', 'time=tme'],
  timeFormat: ['replay', csv, '--time-format', 'unix'],
  mapOnDataset: ['replay', 'ml-100k', '--map', 'user=a'],
  validateMissing: ['validate', join(dir, 'nope.csv')],
  validateNone: ['validate'],
  serveOnRun: ['run', '--serve'],
  replayEmpty: ['replay', empty],
  replayMissingJsonl: ['replay', join(dir, 'missing.jsonl')],
  trainCases: ['train', '--cases', join(dir, 'missing.jsonl'), '--out', join(dir, 'model')],
  trainPreset: ['train', '--cases', csv, '--out', join(dir, 'model'), '--preset', 'huge'],
  topicsEmbedded: ['topics', 'create'],
  distillInto: ['distill', '--into', 'production'],
} as const satisfies Record<string, readonly string[]>;

describe('starstream usage and input errors', () => {
  const runs = {} as Record<keyof typeof CASES, Run>;
  before(async () => {
    const entries = Object.entries(CASES) as [keyof typeof CASES, readonly string[]][];
    const results = await Promise.all(entries.map(([, args]) => starstream(args, { env: { STARSTREAM_LOG_LEVEL: 'warn' } })));
    entries.forEach(([name], i) => (runs[name] = results[i]!));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Exit 2, one line on stderr (no stack trace), nothing on stdout; returns the line. */
  const oneLine = (name: keyof typeof CASES): string => {
    const run = runs[name];
    assert.equal(run.code, 2, `${name}: ${run.stderr}`);
    const lines = plainLines(run.stderr);
    assert.equal(lines.length, 1, `${name}: one line, got:\n${run.stderr}`);
    assert.doesNotMatch(run.stderr, /\n\s+at /, `${name}: no stack trace`);
    assert.equal(run.stdout, '');
    return lines[0]!;
  };

  it('--help prints every command and exits 0; so does `help COMMAND` for that command', () => {
    assert.equal(runs.help.code, 0, runs.help.stderr);
    for (const name of Object.keys(COMMANDS)) assert.match(runs.help.stdout, new RegExp(`^  ${name}\\b`, 'm'), name);
    assert.match(runs.help.stdout, /exit codes: 0 ok, 1 failure at run time, 2 /);
    assert.equal(runs.helpWord.code, 0);
    assert.match(runs.helpWord.stdout, /^usage: starstream replay /);
  });

  it('each command --help prints its own usage, not the global one, and exits 0', () => {
    assert.equal(runs.demoHelp.code, 0, runs.demoHelp.stderr);
    assert.match(runs.demoHelp.stdout, /^usage: starstream demo \[--events N\]/);
    assert.doesNotMatch(runs.demoHelp.stdout, /starstream replay|commands:/);
    assert.equal(runs.replayHelp.code, 0);
    assert.match(runs.replayHelp.stdout, /^usage: starstream replay <ml-100k\|lastfm\|DIR\|FILE\.jsonl>/);
  });

  it('no command: one line pointing at --help, exit 2', () => {
    assert.match(oneLine('none'), /no command given \(see starstream --help\)/);
  });

  it('a mistyped flag is named, with the near name', () => {
    assert.match(oneLine('typo'), /^starstream: demo: unknown option --event; did you mean --events\? \(see starstream demo --help\)$/);
  });

  it('a bad value names its flag', () => {
    assert.match(oneLine('zero'), /--events must be a whole number ≥ 1, got "0"/);
    assert.match(oneLine('notANumber'), /--users must be a whole number ≥ 1, got "many"/);
  });

  it("another command's flag, an unknown command, a missing value, a mistyped subcommand", () => {
    assert.match(oneLine('otherCommandsFlag'), /run does not take --events/);
    assert.match(oneLine('unknownCommand'), /unknown command "dmeo"; did you mean "demo"\?/);
    assert.match(oneLine('missingValue'), /--config needs a value/);
    assert.match(oneLine('subcommandTypo'), /topics: unknown subcommand "creat" \(create\); did you mean "create"\?/);
  });

  it('an unknown data set lists the known ones', () => {
    assert.match(oneLine('dataset'), /no data set "nope": the known data sets are ml-100k, lastfm/);
    assert.match(oneLine('datasetTypo'), /did you mean ml-100k\?/);
  });

  it('replay says what is wrong with a file, an empty directory, a missing file', () => {
    assert.match(oneLine('replayFile'), /events\.csv has no time column \(columns: user, item\); name it with --map time=COLUMN/);
    assert.match(oneLine('replayUnknownKind'), /data\.xlsx is a file of no kind replay knows; it reads interactions from a \.csv, \.tsv, \.jsonl, \.ndjson file/);
    assert.match(oneLine('replayEmpty'), /is an empty directory/);
    assert.match(oneLine('replayMissingJsonl'), /no such file .*missing\.jsonl/);
  });

  it('the import and validate name a bad --map, --time-format or file, with the near name', () => {
    assert.match(oneLine('mapTypo'), /--map: unknown field "usr" \(fields: user, item, time, type, value, id\); did you mean user\? \(see starstream validate --help\)$/);
    assert.match(oneLine('mapColumnTypo'), /--map time=tme: .*events\.csv has no column "tme" \(columns: user, item\)/);
    assert.match(oneLine('timeFormat'), /--time-format must be one of auto, epoch-s, epoch-ms, iso, got "unix"/);
    assert.match(oneLine('mapOnDataset'), /--map, --time-format and --catalogue read your own file/);
    assert.match(oneLine('validateMissing'), /validate: no such file .*nope\.csv/);
    assert.match(oneLine('validateNone'), /validate needs a file/);
    assert.match(oneLine('serveOnRun'), /run does not take --serve/);
  });

  it('train and distill check their flags before starting Python', () => {
    assert.match(oneLine('trainCases'), /train --cases: no such file/);
    assert.match(oneLine('trainPreset'), /--preset must be one of tiny, cpu, gpu, got "huge"/);
    assert.match(oneLine('distillInto'), /--into must be champion or experiment, got "production"/);
  });

  it('topics create on the embedded log says there is nothing to do instead of reporting success', () => {
    assert.equal(runs.topicsEmbedded.code, 0, runs.topicsEmbedded.stderr);
    assert.match(runs.topicsEmbedded.stdout, /nothing to do on the embedded event log/);
    assert.doesNotMatch(runs.topicsEmbedded.stderr, /topics ensured/);
  });
});

describe('starstream config errors on the command line', () => {
  it('an unknown env field: one line naming the variable and the near field, exit 2', async () => {
    const run = await starstream(['config', 'check'], { env: { STARSTREAM_STORE__DIMENSON: '8' } });
    assert.equal(run.code, 2);
    assert.deepEqual(plainLines(run.stderr), [
      'starstream: config store: unknown field dimenson (set by STARSTREAM_STORE__DIMENSON); did you mean dimension (STARSTREAM_STORE__DIMENSION)?',
    ]);
  });
});
