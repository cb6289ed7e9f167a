#!/usr/bin/env node
/**
 * The `starstream` command line. One file per command in this folder; this one parses arguments, loads the
 * config once (file from --config, then STARSTREAM_* env) and dispatches. Exit codes: 0 ok, 1 failure,
 * 2 bad usage or config.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.ts';
import type { Config, ConfigInput } from '../config/schema.ts';
import { ConfigError, errorMessage } from '../errors/index.ts';
import { createLogger, type Logger } from '../logging/logger.ts';

const USAGE = `usage: starstream <command> [options]

commands:
  demo [--events N] [--users N] [--items N] [--seed N] [--out FILE] [--teacher]
                         the whole pipeline on the embedded default over a generated stream (npm start);
                         --teacher adds the side stream: sampled cases → MARS teacher → labelled data set
  run                    the pipeline on the configured event log and store, until SIGTERM
  teacher [--label]      the MARS teacher worker: teacher-cases → trajectories, until SIGTERM; --label also
                         runs the outcome join and dataset export (one such process per data directory)
  replay <ml-100k|lastfm|DIR|FILE.jsonl> [--teacher]
                         produce a data set into the interactions topic (Kafka), or run it in-process (embedded)
  eval [--dataset ml-100k] [--out DIR] [--star NAME=DIR]… [--teacher-budget-s S] [--seed N]
       [--stream-every N] [--limit-events N]
                         evaluation harness: the paper's protocol (HR@1/3/5 on 20 candidates) and the streaming
                         one (hit rate, NDCG@10) per scenario slice, for popularity, item-CF, embeddings,
                         baseline, STAR models and the teacher (within S seconds); table, JSON, SVG under DIR
  cases export [--dataset ml-100k] [--out FILE.jsonl] [--seed N] [--teacher-budget-s S --trajectories DIR]
                         replay a data set and write labelled 20-candidate cases for train/; with a budget, the
                         MARS teacher also ranks a sample of the train cases into a labelled data set in DIR
  train --cases FILE --out DIR [--preset tiny|cpu|gpu]
                         train a STAR model with the Python trainer (bash train/install.sh first)
  distill [--force] [--margin X]
                         one turn of the distillation loop: new trajectories → challenger → held-out
                         evaluation against the serving model → publish only if it wins (config distill.*)
  topics create          create every starstream topic (idempotent)
  store init             create or check the vector store's collections
  config docs|check      print the configuration reference, or validate the config and print it
  metrics docs           print the metric catalog (docs/metrics.md)

common options:
  --config FILE          JSON config file (env STARSTREAM_* overrides it; see README "Configuration")
`;

/** Sampling for `demo --teacher` when none is configured: ~6 cases over the generated stream's 30 days. */
const TEACHER_DEMO_SAMPLING = { enabled: true, casesPerMinute: 0.3 / (24 * 60), burstCases: 4, rateWindowMs: 86_400_000, candidatesPerCase: 10 };

/** How long `--teacher` runs wait, after the stream, for the teacher to answer every sampled case. */
const TEACHER_DRAIN_MS = 30 * 60_000;

export async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      events: { type: 'string' },
      users: { type: 'string' },
      items: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      dataset: { type: 'string' },
      cases: { type: 'string' },
      preset: { type: 'string' },
      force: { type: 'boolean' },
      margin: { type: 'string' },
      label: { type: 'boolean' },
      teacher: { type: 'boolean' },
      star: { type: 'string', multiple: true },
      'teacher-budget-s': { type: 'string' },
      trajectories: { type: 'string' },
      'stream-every': { type: 'string' },
      'limit-events': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, sub, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  const overrides: ConfigInput = command === 'demo' ? { ops: { port: 0 } } : {};
  let config = loadConfig({ file: values.config, env: process.env, overrides: envWins(overrides) });
  if (values.teacher && !config.sampling.enabled) {
    // --teacher on a run that did not configure sampling: a handful of cases over the stream, since the CPU
    // teacher needs about a minute per case. Configure `sampling.*` to choose otherwise.
    config = loadConfig({ file: values.config, env: process.env, overrides: { ...envWins(overrides), sampling: TEACHER_DEMO_SAMPLING } });
  }
  const logger = createLogger(config.logLevel);
  const num = (text: string | undefined, fallback: number): number => (text === undefined ? fallback : positiveNumber(text));

  switch (command) {
    case 'demo': {
      const { demo } = await import('./demo.ts');
      const { printDemoSummary } = await import('./report.ts');
      const summary = await demo(config, logger, {
        events: num(values.events, 50_000),
        users: num(values.users, 5_000),
        items: num(values.items, 10_000),
        seed: num(values.seed, 1),
        out: values.out ?? 'out/recommendations.jsonl',
        malformed: { garbageEvery: 5_000, nonFiniteEvery: 7_919 },
        ...(values.teacher ? { teacher: { drainTimeoutMs: TEACHER_DRAIN_MS } } : {}),
      });
      printDemoSummary(summary, values.out ?? 'out/recommendations.jsonl');
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
      if (!sub) throw new UsageError('replay needs a data set name, directory or .jsonl file');
      return replay(config, logger, sub, values.teacher ? { drainTimeoutMs: TEACHER_DRAIN_MS } : undefined);
    }
    case 'eval': {
      const { evalCommand } = await import('./eval.ts');
      const budget = values['teacher-budget-s'];
      return evalCommand(config, logger, {
        dataset: values.dataset ?? 'ml-100k',
        out: values.out ?? 'bench/results',
        star: (values.star ?? []).map(starSpec),
        teacherBudgetS: budget === undefined || Number(budget) === 0 ? 0 : positiveNumber(budget),
        seed: num(values.seed, 1),
        streamEvery: num(values['stream-every'], 1),
        ...(values['limit-events'] ? { limitEvents: positiveNumber(values['limit-events']) } : {}),
      });
    }
    case 'cases': {
      if (sub !== 'export') throw new UsageError('cases: the subcommand is "export"');
      const { casesExportCommand } = await import('./cases.ts');
      const report = await casesExportCommand(config, logger, {
        dataset: values.dataset ?? 'ml-100k',
        out: values.out ?? 'out/cases.jsonl',
        seed: num(values.seed, 1),
        teacherBudgetS: num(values['teacher-budget-s'], 0),
        trajectories: values.trajectories,
      });
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return 0;
    }
    case 'train': {
      if (!values.cases || !values.out) throw new UsageError('train needs --cases FILE and --out DIR');
      const { train } = await import('./train.ts');
      return train({ cases: values.cases, out: values.out, preset: values.preset ?? 'cpu' });
    }
    case 'distill': {
      const { distill } = await import('./distill.ts');
      const margin = values.margin === undefined ? undefined : Number(values.margin);
      if (margin !== undefined && !(margin >= -1 && margin <= 1)) throw new UsageError(`--margin must be a number in [-1, 1], got "${values.margin}"`);
      return distill(config, logger, { force: values.force === true, ...(margin !== undefined ? { margin } : {}) });
    }
    case 'topics': {
      if (sub !== 'create') throw new UsageError('topics: the subcommand is "create"');
      const { topicsCreate } = await import('./topics.ts');
      await topicsCreate(config, logger);
      return 0;
    }
    case 'store': {
      if (sub !== 'init') throw new UsageError('store: the subcommand is "init"');
      const { storeInit } = await import('./store.ts');
      await storeInit(config, logger);
      return 0;
    }
    case 'config': {
      const { configDocs } = await import('./config.ts');
      if (sub === 'docs') process.stdout.write(configDocs());
      else if (sub === 'check') process.stdout.write(`${JSON.stringify(redacted(config), null, 2)}\n`);
      else throw new UsageError('config: the subcommand is "docs" or "check"');
      return 0;
    }
    case 'teacher': {
      const { teacher } = await import('./teacher.ts');
      // Exits here like `run`: past the shutdown deadline a model call may still hold the event loop.
      return process.exit(await teacher(config, logger, { label: values.label === true }));
    }
    case 'metrics': {
      if (sub !== 'docs') throw new UsageError('metrics: the subcommand is "docs"');
      const { metricsDocs } = await import('../ops/catalog-docs.ts');
      process.stdout.write(metricsDocs());
      return 0;
    }
    default:
      void rest;
      throw new UsageError(`unknown command "${command}"`);
  }
}

class UsageError extends Error {}

function positiveNumber(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`"${text}" is not a positive number`);
  return n;
}

/** `--star name=dir`, or a bare `dir` named after its last path segment. */
function starSpec(spec: string): { name: string; dir: string } {
  const at = spec.indexOf('=');
  const dir = at > 0 ? spec.slice(at + 1) : spec;
  const name = at > 0 ? spec.slice(0, at) : (dir.replace(/\/+$/, '').split('/').pop() ?? '');
  if (!name || !dir) throw new UsageError(`--star wants NAME=DIR, got "${spec}"`);
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

export function reportFailure(err: unknown, logger?: Logger): number {
  if (err instanceof ConfigError || err instanceof UsageError) {
    process.stderr.write(`starstream: ${errorMessage(err)}\n`);
    if (err instanceof UsageError) process.stderr.write(USAGE);
    return 2;
  }
  logger?.fatal({ err }, 'failed');
  process.stderr.write(`starstream: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = reportFailure(err);
  },
);
