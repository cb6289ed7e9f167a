#!/usr/bin/env node
/**
 * The `starstream` command line. One file per command in this folder; this one parses arguments, loads the
 * config once (file from --config, then STARSTREAM_* env) and dispatches. `usage.ts` holds the help texts.
 *
 * Exit codes: 0 ok; 2 a mistake the user fixes in the command line, the config or the input (an unknown
 * flag or command, a bad value, a config error, a data set or file that is not there or not readable, the
 * trainer not installed), reported in one line on stderr; 1 a failure at run time (a broker or store that
 * does not answer, a failed pipeline), also one line, with a stack trace only for an error nobody classified.
 */
import { parseArgs } from 'node:util';
import { nearestName } from '../config/fields.ts';
import { loadConfig } from '../config/load.ts';
import type { Config, ConfigInput } from '../config/schema.ts';
import { createLogger } from '../logging/logger.ts';
import { isTimeFormat, parseColumnMap, TIME_FORMATS, type ColumnMap } from '../data/mapping.ts';
import { DeliberateDeadLetters } from './deliberate.ts';
import { reportFailure } from './failure.ts';
import { DEFAULT_OUT_LIMIT_BYTES, parseByteSize } from './output-file.ts';
import type { OwnDataOptions } from './replay.ts';
import { COMMANDS, COMMON_FLAGS, FLAGS, UsageError, commandUsage, isCommand, usage, type CommandName, type FlagName } from './usage.ts';

/** Sampling for `demo --teacher` when none is configured: ~6 cases over the generated stream's 30 days. */
const TEACHER_DEMO_SAMPLING = { enabled: true, casesPerMinute: 0.3 / (24 * 60), burstCases: 4, rateWindowMs: 86_400_000, candidatesPerCase: 10 };

/** How long `--teacher` runs wait, after the stream, for the teacher to answer every sampled case. */
const TEACHER_DRAIN_MS = 30 * 60_000;

export async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals, command } = parseCommandLine(argv);
  if (!command) {
    if (values.help) {
      process.stdout.write(usage());
      return 0;
    }
    throw new UsageError('no command given');
  }
  if (values.help) {
    process.stdout.write(commandUsage(command));
    return 0;
  }
  const [, sub, ...rest] = positionals;
  checkSubcommand(command, sub, rest);
  const serve = values.serve === true;
  // A demo that ends on its own takes any free port; a served one the configured port (9464 by default, and a
  // free one when that is taken), so its URL is the one the README shows.
  let overrides: ConfigInput = command === 'demo' && !serve ? envWins({ ops: { port: 0 } }) : {};
  let config = loadConfig({ file: values.config, env: process.env, overrides });
  if (values.teacher && !config.sampling.enabled) {
    // --teacher on a run that did not configure sampling: a handful of cases over the stream, since the CPU
    // teacher needs about a minute per case. Configure `sampling.*` to choose otherwise.
    overrides = { ...overrides, sampling: TEACHER_DEMO_SAMPLING };
    config = loadConfig({ file: values.config, env: process.env, overrides });
  }
  // POST /v1/events wants a token like the admin routes: a served run without one gets one for this run.
  const tokenGenerated = serve && !config.ops.apiToken;
  if (tokenGenerated) {
    const { generatedToken } = await import('./serve.ts');
    overrides = { ...overrides, ops: { ...overrides.ops, apiToken: generatedToken() } };
    config = loadConfig({ file: values.config, env: process.env, overrides });
  }
  const deliberate = command === 'demo' ? new DeliberateDeadLetters(process.stderr) : null;
  const logger = createLogger(config.logLevel, deliberate ?? process.stderr);

  switch (command) {
    case 'demo': {
      const { demo } = await import('./demo.ts');
      const { deliberateCount, printSummary } = await import('./report.ts');
      const { serveMode } = await import('./serve.ts');
      const out = values.out ?? 'out/recommendations.jsonl';
      const report = (summary: Parameters<typeof printSummary>[0]): void =>
        printSummary(summary, {
          title: 'demo',
          out,
          deliberate: { mix: DEMO_MALFORMED, count: deliberateCount(summary.events, DEMO_MALFORMED) },
          next: [
            '`starstream replay ml-100k` runs a public data set through the same pipeline; `starstream --help` lists every command',
            ...(serve ? [] : ['`npm start -- --serve` keeps the pipeline and its API up after the stream: query it, POST your own events']),
          ],
        });
      const summary = await demo(config, logger, {
        events: count(command, values, 'events', 50_000),
        users: count(command, values, 'users', 5_000),
        items: count(command, values, 'items', 10_000),
        seed: count(command, values, 'seed', 1),
        out,
        outLimitBytes: outLimit(command, values),
        malformed: DEMO_MALFORMED,
        ...(values.teacher ? { teacher: { drainTimeoutMs: TEACHER_DRAIN_MS } } : {}),
        ...(serve ? { serve: serveMode(report, tokenGenerated) } : {}),
      });
      if (!serve) report(summary);
      return 0;
    }
    case 'run': {
      const { run } = await import('./run.ts');
      // Exits here rather than waiting for the event loop: past the shutdown deadline, sockets may still be open.
      // So does a failure to start, reported first: the ops server and clients already open would keep it alive.
      return process.exit(await run(config, logger).catch((err: unknown) => reportFailure(err, logger)));
    }
    case 'replay': {
      const { replay } = await import('./replay.ts');
      if (!sub) throw new UsageError('replay needs a data set name, a directory, or a .jsonl, .csv or .tsv file', 'replay');
      return replay(config, logger, sub, {
        ...ownDataOptions(command, values),
        outLimitBytes: outLimit(command, values),
        ...(values.teacher ? { teacher: { drainTimeoutMs: TEACHER_DRAIN_MS } } : {}),
        ...(serve ? { serve, tokenGenerated } : {}),
      });
    }
    case 'validate': {
      const { validateCommand } = await import('./validate.ts');
      if (!sub) throw new UsageError('validate needs a file: a .csv, .tsv or .jsonl file of interactions', 'validate');
      return validateCommand(config, sub, ownDataOptions(command, values), ownDataFlags(values));
    }
    case 'eval': {
      const { evalCommand } = await import('./eval.ts');
      return evalCommand(config, logger, {
        dataset: values.dataset ?? 'ml-100k',
        out: values.out ?? 'bench/results',
        star: (values.star ?? []).map(starSpec),
        teacherBudgetS: amount(command, values, 'teacher-budget-s', 0),
        seed: count(command, values, 'seed', 1),
        streamEvery: count(command, values, 'stream-every', 1),
        ...(values['limit-events'] !== undefined ? { limitEvents: count(command, values, 'limit-events', 0) } : {}),
      });
    }
    case 'cases': {
      const { casesExportCommand } = await import('./cases.ts');
      const report = await casesExportCommand(config, logger, {
        dataset: values.dataset ?? 'ml-100k',
        out: values.out ?? 'out/cases.jsonl',
        seed: count(command, values, 'seed', 1),
        teacherBudgetS: amount(command, values, 'teacher-budget-s', 0),
        trajectories: values.trajectories,
      });
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return 0;
    }
    case 'train': {
      if (!values.cases || !values.out) throw new UsageError('train needs --cases FILE and --out DIR', 'train');
      const preset = values.preset ?? 'cpu';
      if (!TRAIN_PRESETS.includes(preset)) throw new UsageError(`--preset must be one of ${TRAIN_PRESETS.join(', ')}, got "${preset}"`, 'train');
      const { train } = await import('./train.ts');
      return train({ cases: values.cases, out: values.out, preset });
    }
    case 'distill': {
      const { distill } = await import('./distill.ts');
      const margin = values.margin === undefined ? undefined : Number(values.margin);
      if (margin !== undefined && !(margin >= -1 && margin <= 1)) throw new UsageError(`--margin must be a number in [-1, 1], got "${values.margin}"`, 'distill');
      const into = values.into;
      if (into !== undefined && into !== 'champion' && into !== 'experiment') throw new UsageError(`--into must be champion or experiment, got "${into}"`, 'distill');
      return distill(config, logger, { force: values.force === true, ...(margin !== undefined ? { margin } : {}), ...(into !== undefined ? { publishTo: into } : {}) });
    }
    case 'topics': {
      const { topicsCreateCommand } = await import('./topics.ts');
      process.stdout.write(await topicsCreateCommand(config, logger));
      return 0;
    }
    case 'store': {
      const { storeInit } = await import('./store.ts');
      await storeInit(config, logger);
      return 0;
    }
    case 'config': {
      const { configDocs } = await import('./config.ts');
      if (sub === 'docs') process.stdout.write(configDocs());
      else process.stdout.write(`${JSON.stringify(redacted(config), null, 2)}\n`);
      return 0;
    }
    case 'teacher': {
      const { teacher } = await import('./teacher.ts');
      // Exits here like `run`: past the shutdown deadline a model call may still hold the event loop.
      return process.exit(await teacher(config, logger, { label: values.label === true }));
    }
    case 'experiment': {
      const { experimentStatus } = await import('./experiment.ts');
      process.stdout.write(experimentStatus(config));
      return 0;
    }
    case 'metrics': {
      const { metricsDocs } = await import('../ops/catalog-docs.ts');
      process.stdout.write(metricsDocs());
      return 0;
    }
  }
}

/** Every 5,000th demo record is garbage bytes and every 7,919th carries a NaN value: the dead-letter path at work. */
const DEMO_MALFORMED = { garbageEvery: 5_000, nonFiniteEvery: 7_919 } as const;

const TRAIN_PRESETS: readonly string[] = ['tiny', 'cpu', 'gpu'];

type Values = ReturnType<typeof parseCommandLine>['values'];

/**
 * Parses against every flag, then checks that the command takes each flag given. Unknown flags, missing
 * values and flags of another command are `UsageError`s naming the flag, with the nearest name when one is close.
 */
function parseCommandLine(argv: readonly string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: FLAGS });
  } catch (err) {
    throw usageErrorFromParse(err, argv);
  }
  const { values, positionals } = parsed;
  const name = positionals[0];
  if (name !== undefined && !isCommand(name)) {
    if (name === 'help') {
      const topic = positionals[1];
      return { values: { ...values, help: true }, positionals: topic ? positionals.slice(1) : [], command: topic && isCommand(topic) ? topic : undefined };
    }
    const near = nearestName(name, Object.keys(COMMANDS));
    throw new UsageError(`unknown command "${name}"${near ? `; did you mean "${near}"?` : ''}`);
  }
  const command = name;
  if (command) {
    const allowed: readonly string[] = [...COMMON_FLAGS, ...COMMANDS[command].flags];
    for (const flag of Object.keys(values)) {
      if (allowed.includes(flag)) continue;
      const near = nearestName(flag, allowed);
      throw new UsageError(`${command} does not take --${flag}${near ? `; did you mean --${near}?` : ''}`, command);
    }
  }
  return { values, positionals, command };
}

function usageErrorFromParse(err: unknown, argv: readonly string[]): UsageError {
  const e = err as { code?: string; message?: string };
  const command = argv.find((a) => !a.startsWith('-'));
  const known = command && isCommand(command) ? command : undefined;
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const flag = /'(-[^']*)'/.exec(e.message ?? '')?.[1] ?? '';
    const bare = flag.replace(/^-+/, '').split('=')[0] ?? '';
    const candidates = known ? [...COMMON_FLAGS, ...COMMANDS[known].flags] : Object.keys(FLAGS);
    const near = nearestName(bare, candidates);
    return new UsageError(`${known ? `${known}: ` : ''}unknown option ${flag}${near ? `; did you mean --${near}?` : ''}`, known);
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    // "Option '--events <value>' argument missing" or "Option '--force' does not take an argument".
    const flag = /'(--?[\w-]+)/.exec(e.message ?? '')?.[1] ?? 'an option';
    const missing = /argument missing/.test(e.message ?? '');
    return new UsageError(`${flag} ${missing ? 'needs a value' : 'takes no value'}`, known);
  }
  return new UsageError(e.message ?? String(err), known);
}

function checkSubcommand(command: CommandName, sub: string | undefined, rest: readonly string[]): void {
  const spec = COMMANDS[command];
  const subs: readonly string[] | undefined = 'subcommands' in spec ? spec.subcommands : undefined;
  if (subs) {
    if (sub === undefined) throw new UsageError(`${command} needs a subcommand: ${subs.join(' or ')}`, command);
    if (!subs.includes(sub)) {
      const near = nearestName(sub, subs);
      throw new UsageError(`${command}: unknown subcommand "${sub}" (${subs.join(' or ')})${near ? `; did you mean "${near}"?` : ''}`, command);
    }
  }
  const extra = subs || command === 'replay' || command === 'validate' ? rest : [sub, ...rest].filter((a): a is string => a !== undefined);
  if (extra.length > 0) throw new UsageError(`${command}: unexpected argument "${extra[0]}"`, command);
}

/** `--map`, `--time-format`, `--catalogue`, checked: a bad map or format is a usage error naming the flag. */
function ownDataOptions(command: CommandName, values: Values): OwnDataOptions {
  let map: ColumnMap | undefined;
  if (values.map !== undefined) {
    try {
      map = parseColumnMap(values.map);
    } catch (err) {
      throw new UsageError((err as Error).message, command);
    }
  }
  const format = values['time-format'];
  if (format !== undefined && !isTimeFormat(format)) {
    const near = nearestName(format, TIME_FORMATS);
    throw new UsageError(`--time-format must be one of ${TIME_FORMATS.join(', ')}, got "${format}"${near ? `; did you mean ${near}?` : ''}`, command);
  }
  return { ...(map ? { map } : {}), ...(format !== undefined ? { timeFormat: format } : {}), ...(values.catalogue !== undefined ? { catalogue: values.catalogue } : {}) };
}

/** The same flags as text, for the replay command `validate` suggests. */
function ownDataFlags(values: Values): string {
  const quote = (v: string): string => (/^[\w.,=/:+-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  return [
    values.map !== undefined ? ` --map ${quote(values.map)}` : '',
    values['time-format'] !== undefined ? ` --time-format ${quote(values['time-format'])}` : '',
    values.catalogue !== undefined ? ` --catalogue ${quote(values.catalogue)}` : '',
  ].join('');
}

/** A whole number ≥ 1 from `--flag`, or `fallback` when it is not given. */
function count(command: CommandName, values: Values, flag: FlagName, fallback: number): number {
  const text = values[flag];
  if (text === undefined) return fallback;
  const n = Number(text);
  if (typeof text !== 'string' || text.trim() === '' || !Number.isInteger(n) || n < 1) {
    throw new UsageError(`--${flag} must be a whole number ≥ 1, got "${String(text)}"`, command);
  }
  return n;
}

/** `--out-limit SIZE` in bytes (0 = unbounded), or the default. */
function outLimit(command: CommandName, values: Values): number {
  const text = values['out-limit'];
  if (text === undefined) return DEFAULT_OUT_LIMIT_BYTES;
  const bytes = typeof text === 'string' ? parseByteSize(text) : null;
  if (bytes === null) throw new UsageError(`--out-limit must be a size such as 64MB, 1GiB or 0 (no limit), got "${String(text)}"`, command);
  return bytes;
}

/** A number ≥ 0 (a budget in seconds) from `--flag`, or `fallback`. */
function amount(command: CommandName, values: Values, flag: FlagName, fallback: number): number {
  const text = values[flag];
  if (text === undefined) return fallback;
  const n = Number(text);
  if (typeof text !== 'string' || text.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`--${flag} must be a number ≥ 0, got "${String(text)}"`, command);
  }
  return n;
}

/** `--star name=dir`, or a bare `dir` named after its last path segment. */
function starSpec(spec: string): { name: string; dir: string } {
  const at = spec.indexOf('=');
  const dir = at > 0 ? spec.slice(at + 1) : spec;
  const name = at > 0 ? spec.slice(0, at) : (dir.replace(/\/+$/, '').split('/').pop() ?? '');
  if (!name || !dir) throw new UsageError(`--star wants NAME=DIR, got "${spec}"`, 'eval');
  return { name, dir };
}

/** Defaults a command prefers (the demo picks a free port) must not override what the user set in env. */
function envWins(overrides: ConfigInput): ConfigInput {
  return process.env.STARSTREAM_OPS__PORT ? {} : overrides;
}

function redacted(config: Config): unknown {
  return JSON.parse(
    JSON.stringify(config, (key, value: unknown) => {
      if (/password|apiKey|apiToken/i.test(key) && value) return '[redacted]';
      return typeof value === 'string' ? withoutUrlPassword(value) : value;
    }),
  );
}

/** `https://user:secret@host` → `https://user:redacted@host` (the schema registry URL may carry credentials). */
function withoutUrlPassword(text: string): string {
  if (!text.includes('@') || !URL.canParse(text)) return text;
  const url = new URL(text);
  if (url.password === '') return text;
  url.password = 'redacted';
  return url.toString();
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = reportFailure(err);
  },
);
