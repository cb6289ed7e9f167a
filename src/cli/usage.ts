import { KNOWN_DATASETS } from '../data/datasets.ts';
import { MAPPED_FIELDS, TIME_FORMATS } from '../data/mapping.ts';

/**
 * What the command line accepts: every flag, every command with the flags it takes, and the help texts built
 * from them (`starstream --help`, `starstream <command> --help`). `index.ts` parses against this list, so a flag
 * a command does not take is a usage error that names it, never silently ignored.
 */

/** Every flag of any command, in `node:util` parseArgs form. */
export const FLAGS = {
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
  into: { type: 'string' },
  'out-limit': { type: 'string' },
  label: { type: 'boolean' },
  teacher: { type: 'boolean' },
  serve: { type: 'boolean' },
  map: { type: 'string' },
  'time-format': { type: 'string' },
  catalogue: { type: 'string' },
  star: { type: 'string', multiple: true },
  'teacher-budget-s': { type: 'string' },
  trajectories: { type: 'string' },
  'stream-every': { type: 'string' },
  'limit-events': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type FlagName = keyof typeof FLAGS;

/** Flags every command takes. */
export const COMMON_FLAGS: readonly FlagName[] = ['config', 'help'];

interface CommandSpec {
  /** The synopsis after `starstream`, one or more lines. */
  readonly synopsis: string;
  readonly description: string;
  readonly flags: readonly FlagName[];
  /** Subcommands, when the command has them (`topics create`). */
  readonly subcommands?: readonly string[];
}

export const COMMANDS = {
  demo: {
    synopsis: 'demo [--events N] [--users N] [--items N] [--seed N] [--out FILE] [--out-limit SIZE] [--teacher] [--serve]',
    description:
      'the whole pipeline on the embedded default over a generated stream (npm start); --teacher adds the side\n' +
      'stream: sampled cases → MARS teacher → labelled data set. Defaults: 50,000 events, 5,000 users, 10,000\n' +
      'items, seed 1, out/recommendations.jsonl.\n' +
      '--out-limit: the recommendations file rotates to FILE.1 at this size (default 256MiB; 64MB, 1GiB, 0 = no\n' +
      'limit): at most twice it on disk, the newest in FILE\n' +
      '--serve: after the summary the pipeline and its API stay up (ops.port, 9464, or a free port when taken)\n' +
      'until Ctrl-C; it prints the URL, a token for this run and curl examples (GET recommendations, POST /v1/events)',
    flags: ['events', 'users', 'items', 'seed', 'out', 'out-limit', 'teacher', 'serve'],
  },
  run: {
    synopsis: 'run',
    description:
      'the pipeline on the configured event log and store, serving /metrics and the /v1/ API, until SIGTERM.\n' +
      'On the embedded default the event log lives in this process: POST /v1/events (with ops.apiToken) feeds it,\n' +
      'or use Kafka (eventLog.kind) to feed it from outside',
    flags: [],
  },
  teacher: {
    synopsis: 'teacher [--label]',
    description:
      'the MARS teacher worker: teacher-cases → trajectories, until SIGTERM; --label also runs the outcome join and\n' +
      'dataset export (one such process per data directory)',
    flags: ['label'],
  },
  replay: {
    synopsis:
      `replay <${Object.keys(KNOWN_DATASETS).join('|')}|DIR|FILE.jsonl> [--teacher] [--serve] [--out-limit SIZE]\n` +
      'replay FILE.csv|.tsv|.jsonl [--map FIELD=COLUMN,…] [--time-format F] [--catalogue FILE] [--serve]',
    description:
      'produce a data set into the interactions topic (Kafka), or run it through the pipeline in this process\n' +
      '(embedded) and print its summary; --serve keeps the pipeline and its API up after it (embedded).\n' +
      'DIR is a data set directory in MovieLens or Last.fm format; FILE.jsonl holds interactions as JSON lines.\n' +
      `Your own file (the import): --map names the columns of ${MAPPED_FIELDS.join(', ')} (the first three\n` +
      'required; a field left out is looked for under its own name: user,item,time or userId,itemId,timestampMs…),\n' +
      `--time-format ${TIME_FORMATS.join('|')} (default auto), --catalogue a CSV/TSV/JSON-lines file with id, title,\n` +
      'categories (| or ; between categories). Bad rows are skipped and counted, the rest run sorted by time;\n' +
      '`starstream validate FILE` reports the problems first. Recommendations go to out/replay-NAME.jsonl,\n' +
      'bounded as demo\'s by --out-limit',
    flags: ['teacher', 'serve', 'map', 'time-format', 'catalogue', 'out-limit'],
  },
  validate: {
    synopsis: 'validate FILE [--map FIELD=COLUMN,…] [--time-format F] [--catalogue FILE]',
    description:
      'check your own interaction file (CSV, TSV, JSON lines) before replay imports it, with the same flags:\n' +
      'unreadable rows, bad values (what ingest would refuse included), rows out of time order, duplicate rows\n' +
      'and event ids, item ids not in the catalogue; counts and first line numbers. Exit 0 clean, 2 problems',
    flags: ['map', 'time-format', 'catalogue'],
  },
  eval: {
    synopsis: 'eval [--dataset ml-100k] [--out DIR] [--star NAME=DIR]… [--teacher-budget-s S] [--seed N]\n     [--stream-every N] [--limit-events N]',
    description:
      "evaluation harness: the paper's protocol (HR@1/3/5 on 20 candidates) and the streaming one (hit rate,\n" +
      'NDCG@10) per scenario slice, for popularity, item-CF, embeddings, baseline, STAR models and the teacher\n' +
      `(within S seconds); table, JSON, SVG under DIR (default bench/results). Data sets: ${Object.keys(KNOWN_DATASETS).join(', ')} or a directory`,
    flags: ['dataset', 'out', 'star', 'teacher-budget-s', 'seed', 'stream-every', 'limit-events'],
  },
  cases: {
    synopsis: 'cases export [--dataset ml-100k] [--out FILE.jsonl] [--seed N] [--teacher-budget-s S --trajectories DIR]',
    description:
      'replay a data set and write labelled 20-candidate cases for train/; with a budget, the MARS teacher also\n' +
      'ranks a sample of the train cases into a labelled data set in DIR',
    flags: ['dataset', 'out', 'seed', 'teacher-budget-s', 'trajectories'],
    subcommands: ['export'],
  },
  train: {
    synopsis: 'train --cases FILE --out DIR [--preset tiny|cpu|gpu]',
    description: 'train a STAR model with the Python trainer (bash train/install.sh first)',
    flags: ['cases', 'out', 'preset'],
  },
  distill: {
    synopsis: 'distill [--force] [--margin X] [--into champion|experiment]',
    description:
      'one turn of the distillation loop: new trajectories → challenger → held-out evaluation against the serving\n' +
      'model → publish only if it wins (config distill.*); --into experiment publishes the winner beside the\n' +
      'champion and writes the experiment section that tests it on live traffic (distill.publishTo)',
    flags: ['force', 'margin', 'into'],
  },
  topics: {
    synopsis: 'topics create',
    description: 'create every starstream topic on Kafka (idempotent); the embedded log has none to create',
    flags: [],
    subcommands: ['create'],
  },
  store: {
    synopsis: 'store init',
    description: "create or check the vector store's collections",
    flags: [],
    subcommands: ['init'],
  },
  config: {
    synopsis: 'config docs|check',
    description: 'print the configuration reference, or validate the config and print it',
    flags: [],
    subcommands: ['docs', 'check'],
  },
  experiment: {
    synopsis: 'experiment status',
    description: 'print the online experiment\'s per-arm table (hit@K with confidence intervals, latency, verdicts) from its latest report',
    flags: [],
    subcommands: ['status'],
  },
  metrics: {
    synopsis: 'metrics docs',
    description: 'print the metric catalog (docs/metrics.md)',
    flags: [],
    subcommands: ['docs'],
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

const COMMON_OPTIONS = `common options:
  --config FILE          JSON config file (env STARSTREAM_* overrides it; see README "Configuration")
  -h, --help             this help; \`starstream <command> --help\` for one command
`;

/** `starstream --help`: every command. */
export function usage(): string {
  const lines = ['usage: starstream <command> [options]', '', 'commands:'];
  for (const spec of Object.values(COMMANDS) as CommandSpec[]) {
    lines.push(`  ${spec.synopsis.replace(/\n/g, '\n  ')}`);
    lines.push(...spec.description.split('\n').map((l) => `                         ${l}`));
  }
  lines.push('', COMMON_OPTIONS, 'exit codes: 0 ok, 1 failure at run time, 2 a mistake in the command line, config or input');
  return `${lines.join('\n')}\n`;
}

/** `starstream <command> --help`. */
export function commandUsage(name: CommandName): string {
  const spec: CommandSpec = COMMANDS[name];
  return `usage: starstream ${spec.synopsis.replace(/\n/g, '\n                  ')}\n\n${spec.description}\n\n${COMMON_OPTIONS}`;
}

/** Bad usage: an unknown command or flag, a bad flag value. One line, exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose help to point at; none for the global help. */
    readonly command?: CommandName,
  ) {
    super(message);
  }
}

/** Input the user gave that cannot be used (no such data set, a file where a directory is due). One line, exit 2. */
export class InputError extends Error {}
