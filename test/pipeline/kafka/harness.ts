/**
 * What the pipeline-on-Kafka integration tests share besides accounting: the broker (KAFKA_BROKERS, or a local
 * one started for the file), a per-test starstream config with random topic prefix and group whose topics are
 * deleted when the test ends, paced producing, and `starstream run` child processes.
 *
 * Every test registers its cleanup on the test context at the moment it creates something (topics, children,
 * clients), so a failing assertion never leaves a process or a topic behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import kafkajs from 'kafkajs';
import type { LocalBroker, LocalBrokerOptions } from '../../../scripts/kafka/broker.mjs';
import { topicsCreate } from '../../../src/cli/topics.ts';
import { loadConfig } from '../../../src/config/load.ts';
import type { Config } from '../../../src/config/schema.ts';
import {
  createFraming,
  SCHEMA_HEADER,
  schemaHeaderValue,
  type Framing,
} from '../../../src/eventlog/codec/framing.ts';
import { createCodecs, type Codecs } from '../../../src/eventlog/codec/avro.ts';
import { createKafkaEventLog } from '../../../src/eventlog/kafka/log.ts';
import type { EventLog, OutgoingRecord } from '../../../src/eventlog/port.ts';
import { topicNames, type TopicRole } from '../../../src/eventlog/topics.ts';
import type { Interaction } from '../../../src/domain/events.ts';
import { createLogger, silentLogger, type Logger } from '../../../src/logging/logger.ts';
import { withRetry } from '../../../src/util/retry.ts';
import { uniqueName } from '../../helpers.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const cleanups = new WeakMap<TestContext, (() => unknown)[]>();

/**
 * Registers `fn` to run when `t` ends, in reverse order of registration (like `defer`): what was created
 * last goes first, so children stop before the topics go and a test's own broker stops after everything
 * that talks to it. (node:test runs `t.after` hooks in registration order.)
 */
export function onCleanup(t: TestContext, fn: () => unknown): void {
  let list = cleanups.get(t);
  if (!list) {
    const fns: (() => unknown)[] = [];
    cleanups.set(t, (list = fns));
    t.after(async () => {
      const errors: unknown[] = [];
      for (const cleanup of fns.reverse()) {
        try {
          await cleanup();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length) throw new AggregateError(errors, 'test cleanup failed');
    });
  }
  list.push(fn);
}

let ownBroker: Promise<LocalBroker> | null = null;

/**
 * Bootstrap servers: KAFKA_BROKERS when set (`npm test` sets it), else a local broker started once for this
 * test file. Call `stopOwnBroker()` from the file's `after` hook.
 */
export async function brokers(): Promise<string> {
  const fromEnv = process.env.KAFKA_BROKERS;
  if (fromEnv) return fromEnv;
  ownBroker ??= startBroker();
  return (await ownBroker).brokers;
}

export async function stopOwnBroker(): Promise<void> {
  const broker = ownBroker;
  ownBroker = null;
  if (broker) await (await broker).stop();
}

/** A local KRaft broker owned by the caller (tests that stop and restart it); says so on stderr. */
export async function startBroker(options: LocalBrokerOptions = {}): Promise<LocalBroker> {
  const { startLocalBroker } = await import('../../../scripts/kafka/broker.mjs');
  const started = Date.now();
  const broker = await startLocalBroker(options);
  process.stderr.write(`# local KRaft broker on ${broker.brokers}, started in ${Date.now() - started} ms\n`);
  return broker;
}

/** Settings that make group changes quick on a test broker; anything else is the production default. */
export interface PipelineEnvOptions {
  readonly brokers: string;
  readonly partitions: number;
  readonly maxBatchRecords: number;
  readonly shutdownDeadlineMs?: number;
  /** Extra STARSTREAM_* variables. */
  readonly extra?: Readonly<Record<string, string>>;
}

/**
 * The STARSTREAM_* environment of one test's pipeline: random topic prefix, group and client id. The same
 * variables configure the `starstream run` children (through the CLI's env loader) and, parsed here with
 * `loadConfig`, the test's own view of the topics, so both sides agree by construction.
 */
export function pipelineEnv(options: PipelineEnvOptions): Record<string, string> {
  const id = uniqueName('pk');
  return {
    STARSTREAM_LOG_LEVEL: 'warn',
    STARSTREAM_EVENT_LOG__KIND: 'kafka',
    STARSTREAM_EVENT_LOG__KAFKA__BROKERS: JSON.stringify(options.brokers.split(',')),
    STARSTREAM_EVENT_LOG__KAFKA__CLIENT_ID: id,
    STARSTREAM_EVENT_LOG__KAFKA__SESSION_TIMEOUT_MS: '6000',
    STARSTREAM_EVENT_LOG__KAFKA__HEARTBEAT_INTERVAL_MS: '500',
    STARSTREAM_EVENT_LOG__KAFKA__FETCH_MAX_WAIT_MS: '100',
    STARSTREAM_EVENT_LOG__KAFKA__REBALANCE_TIMEOUT_MS: '10000',
    STARSTREAM_EVENT_LOG__TOPICS__PREFIX: `${id}.`,
    STARSTREAM_EVENT_LOG__TOPICS__PARTITIONS: String(options.partitions),
    STARSTREAM_PIPELINE__GROUP_ID: `${id}-group`,
    STARSTREAM_PIPELINE__MAX_BATCH_RECORDS: String(options.maxBatchRecords),
    STARSTREAM_OPS__PORT: '0',
    STARSTREAM_SHUTDOWN_DEADLINE_MS: String(options.shutdownDeadlineMs ?? 20_000),
    ...options.extra,
  };
}

export interface TestTopics {
  readonly config: Readonly<Config>;
  readonly env: Readonly<Record<string, string>>;
  readonly topics: Readonly<Record<TopicRole, string>>;
  readonly brokerList: string[];
  readonly codecs: Codecs;
  readonly framing: Framing;
}

/**
 * Creates every starstream topic of `env` (`starstream topics create`) and registers their deletion on `t`
 * before anything else can fail.
 */
export async function createTestTopics(
  t: TestContext,
  env: Readonly<Record<string, string>>,
): Promise<TestTopics> {
  const config = loadConfig({ env });
  const topics = topicNames(config);
  const brokerList = [...config.eventLog.kafka.brokers];
  onCleanup(t, () => deleteTopics(brokerList, Object.values(topics)));
  await topicsCreate(config, silentLogger());
  await waitForTopicsServed(brokerList, Object.values(topics));
  return { config, env, topics, brokerList, codecs: createCodecs(), framing: createFraming(config.eventLog) };
}

/**
 * Waits until the broker serves every partition of `topics`. `createTopics` returns once the controller has
 * elected leaders, but the leader may not host the partition yet: a produce right after it was refused with
 * "This server does not host this topic-partition" on a loaded machine. ListOffsets goes to each partition's
 * leader and fails the same way until the partition is there, so its success is the readiness signal.
 */
async function waitForTopicsServed(brokerList: string[], topics: readonly string[]): Promise<void> {
  const admin = new kafkajs.Kafka({
    brokers: brokerList,
    logLevel: kafkajs.logLevel.NOTHING,
    // waitUntil polls; kafkajs's own retries would only hide the state between polls.
    retry: { retries: 0 },
  }).admin();
  await admin.connect();
  try {
    await waitUntil(
      async () => {
        const metadata = await admin.fetchTopicMetadata({ topics: [...topics] });
        for (const topic of metadata.topics) {
          if (topic.partitions.length === 0 || topic.partitions.some((p) => p.leader < 0)) return false;
          const offsets = await admin.fetchTopicOffsets(topic.name);
          if (offsets.length !== topic.partitions.length) return false;
        }
        return metadata.topics.length === topics.length;
      },
      // A generous deadline: only a broker that never serves the topics fails here.
      { timeoutMs: 120_000, intervalMs: 100, what: `topics ${topics.join(', ')} served by their leaders` },
    );
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function deleteTopics(brokerList: string[], topics: string[]): Promise<void> {
  const admin = new kafkajs.Kafka({
    brokers: brokerList,
    logLevel: kafkajs.logLevel.NOTHING,
    retry: { retries: 2 },
  }).admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const ours = topics.filter((name) => existing.has(name));
    if (ours.length) await admin.deleteTopics({ topics: ours, timeout: 10_000 });
  } catch (err) {
    // A broker that is already gone (a test that stopped its own) has nothing left to delete.
    process.stderr.write(`# could not delete test topics: ${String(err)}\n`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** A Kafka event log for the test's own producing, closed when the test ends. */
export function testEventLog(t: TestContext, setup: TestTopics): EventLog {
  const log = createKafkaEventLog(setup.config.eventLog, silentLogger());
  onCleanup(t, () => log.close());
  return log;
}

/** Committed offsets of `groupId` on `topic`, by partition (-1 where nothing is committed). */
export async function committedOffsets(
  brokerList: string[],
  groupId: string,
  topic: string,
): Promise<Map<number, bigint>> {
  const admin = new kafkajs.Kafka({ brokers: brokerList, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const [ofTopic] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((ofTopic?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Who owns which partitions of `topic` in `groupId` now, by client id; null while the group is not stable
 * (rebalancing, or no members).
 */
export async function groupAssignment(
  brokerList: string[],
  groupId: string,
  topic: string,
): Promise<Map<string, number[]> | null> {
  const admin = new kafkajs.Kafka({ brokers: brokerList, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    const group = groups[0];
    if (!group || group.state !== 'Stable' || group.members.length === 0) return null;
    const out = new Map<string, number[]>();
    for (const member of group.members) {
      const decoded = kafkajs.AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
      const partitions = [...(decoded?.assignment[topic] ?? [])].sort((a, b) => a - b);
      out.set(member.clientId, [...(out.get(member.clientId) ?? []), ...partitions]);
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}

/** How a test feeds the interactions topic: records in the order given, one `send` per `chunk`. */
export interface PacedProducer {
  /** Records sent and acknowledged so far. */
  readonly sent: number;
  /** Resolves when every record is acknowledged; rejects with the producer's error. */
  readonly done: Promise<number>;
  /** Stops before the next chunk (the chunk in flight completes). */
  stop(): void;
}

export interface PacedOptions {
  /** Records per second; 0 = as fast as the broker acknowledges. */
  readonly ratePerSec: number;
  readonly chunk: number;
  /** Retries transient send failures (the broker-restart test), with backoff up to about a minute. */
  readonly retryTransient?: boolean;
}

/**
 * Sends `records` at a fixed rate in chunks, in the background. Pacing is by schedule (chunk i is due at
 * i × chunk / rate), so a slow send is caught up rather than lowering the rate.
 */
export function producePaced(
  log: EventLog,
  records: Iterable<OutgoingRecord>,
  options: PacedOptions,
): PacedProducer {
  const producer = log.producer();
  let sent = 0;
  let stopped = false;
  const retry = { retries: 40, initialDelayMs: 200, maxDelayMs: 2_000, multiplier: 2, jitter: 0.2 };
  const done = (async () => {
    const started = performance.now();
    let chunk: OutgoingRecord[] = [];
    const flush = async (): Promise<void> => {
      const batch = chunk;
      chunk = [];
      if (options.retryTransient) await withRetry(() => producer.send(batch), retry);
      else await producer.send(batch);
      sent += batch.length;
      if (options.ratePerSec > 0) {
        const dueMs = (sent / options.ratePerSec) * 1000 - (performance.now() - started);
        if (dueMs > 0) await new Promise((r) => setTimeout(r, dueMs));
      }
    };
    try {
      for (const record of records) {
        if (stopped) break;
        chunk.push(record);
        if (chunk.length >= options.chunk) await flush();
      }
      if (chunk.length && !stopped) await flush();
      return sent;
    } finally {
      await producer.close();
    }
  })();
  // Awaited by the tests that care; a test that fails first must not also leave an unhandled rejection.
  done.catch(() => undefined);
  return {
    get sent() {
      return sent;
    },
    done,
    stop: () => void (stopped = true),
  };
}

/**
 * Encodes interactions lazily, as the interactions topic expects them (key = user, the schema header of the
 * registry-free framing, which never waits, so this can be a plain generator).
 */
export function* encodeInteractions(
  setup: TestTopics,
  events: Iterable<Interaction>,
): Generator<OutgoingRecord> {
  if (setup.framing.kind !== 'header') throw new Error('encodeInteractions needs the registry-free framing');
  const codec = setup.codecs.interaction;
  const header = Buffer.from(schemaHeaderValue(codec));
  for (const event of events) {
    yield {
      topic: setup.topics.interactions,
      key: event.userId,
      value: codec.encode(event),
      headers: { [SCHEMA_HEADER]: header },
    };
  }
}

/** Replaces the value of every `every`-th record (1-based) with bytes that are no interaction: DLQ material. */
export function* withGarbage(records: Iterable<OutgoingRecord>, every: number): Generator<OutgoingRecord> {
  let n = 0;
  for (const record of records) {
    n++;
    yield n % every === 0 ? { ...record, value: Buffer.from([0xde, 0xad, 0xbe, 0xef, n & 0xff]) } : record;
  }
}

/**
 * What explains a repeated answer under at-least-once delivery: a group (re)join hands every uncommitted
 * batch over again, and a failed batch is redelivered. Which of these happen depends on the machine (a loaded
 * one can stall a consumer past its session timeout), so tests bound repeats by what did happen, read from
 * the pipeline's log at info level, rather than by zero.
 */
export class RepeatCauses {
  /** Joins of the group whose answers are counted (a pipeline's other groups, e.g. items, do not repeat them). */
  joins = 0;
  redeliveries = 0;

  constructor(private readonly groupId: string) {}

  /** Feeds one log line (pino JSON); other lines are ignored. */
  see(line: string): void {
    if (line.includes('"msg":"joined the consumer group"')) {
      if (groupOf(line) === this.groupId) this.joins++;
    } else if (line.includes('"msg":"batch handler failed; the batch is redelivered from the committed offset"')) {
      this.redeliveries++;
    }
  }

  /**
   * Most answers these events can repeat: a rejoin after the first join, one uncommitted chunk per partition;
   * a redelivery, one chunk.
   */
  allowedRepeats(maxBatchRecords: number, partitions: number): number {
    return maxBatchRecords * (Math.max(0, this.joins - 1) * partitions + this.redeliveries);
  }

  describe(): string {
    return `${this.joins} joins of ${this.groupId}, ${this.redeliveries} redeliveries`;
  }
}

/** The `groupId` of a pino JSON line; undefined for anything else. */
function groupOf(line: string): unknown {
  try {
    return (JSON.parse(line) as { groupId?: unknown }).groupId;
  } catch {
    return undefined;
  }
}

/** An info-level logger whose lines only feed `causes` (the in-process pipeline's, in place of a silent one). */
export function repeatCauseLogger(causes: RepeatCauses): Logger {
  let partial = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) causes.see(line);
      done();
    },
  });
  return createLogger('info', sink);
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One `starstream run` child process. */
export interface PipelineProcess {
  readonly name: string;
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  /** Non-null once the process has exited. */
  readonly exitStatus: ExitStatus | null;
  /** The last lines it wrote (its warn/error logs), for assertion messages. */
  output(): string;
  /** Its group joins and redeliveries so far (seen only when it logs at info). */
  readonly causes: RepeatCauses;
  signal(signal: 'SIGTERM' | 'SIGKILL'): void;
}

const OUTPUT_LINES_KEPT = 40;

/**
 * Starts `node --import tsx src/cli/index.ts run` with `env` on top of this process's environment; SIGKILLs it
 * when the test ends if it is still running.
 */
export function spawnPipeline(
  t: TestContext,
  name: string,
  env: Readonly<Record<string, string>>,
): PipelineProcess {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  // The test runner marks its own children; the pipeline is not a test file.
  delete childEnv.NODE_TEST_CONTEXT;
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'run'], {
    cwd: REPO_ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Two tails: everything, and starstream's own lines, which kafkajs's connection chatter would push out.
  const lines: string[] = [];
  const own: string[] = [];
  const keep = (tail: string[], line: string): void => {
    tail.push(line.length > 600 ? `${line.slice(0, 600)}…` : line);
    if (tail.length > OUTPUT_LINES_KEPT) tail.shift();
  };
  const causes = new RepeatCauses(env.STARSTREAM_PIPELINE__GROUP_ID ?? '');
  // Per stream, the unfinished last line waits for the next chunk: a log line counted by `causes` must be whole.
  const remember = (stream: NodeJS.ReadableStream | null): void => {
    let partial = '';
    const take = (line: string): void => {
      if (!line) return;
      causes.see(line);
      keep(lines, line);
      if (!line.includes('"component":"kafkajs"')) keep(own, line);
    };
    stream?.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) take(line);
    });
    stream?.on('end', () => take(partial));
  };
  remember(child.stdout);
  remember(child.stderr);
  let exitStatus: ExitStatus | null = null;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.on('exit', (code, signal) => resolve((exitStatus = { code, signal })));
    child.on('error', (err) => {
      lines.push(`spawn failed: ${err.message}`);
      resolve((exitStatus = { code: null, signal: null }));
    });
  });
  onCleanup(t, async () => {
    if (exitStatus === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  return {
    name,
    pid: child.pid,
    exited,
    get exitStatus() {
      return exitStatus;
    },
    output: () => `${own.join('\n')}\n--- last lines, kafkajs included:\n${lines.slice(-20).join('\n')}`,
    causes,
    signal: (signal) => void child.kill(signal),
  };
}

/**
 * Sends SIGTERM and waits at most `withinMs` for the exit. Resolves with the exit status (null when the child
 * is still running then: the test's cleanup SIGKILLs it) and how long it took.
 */
export async function stopGracefully(
  child: PipelineProcess,
  withinMs: number,
): Promise<{ readonly status: ExitStatus | null; readonly ms: number }> {
  const started = Date.now();
  child.signal('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const status = await Promise.race([
    child.exited,
    new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), withinMs))),
  ]).finally(() => clearTimeout(timer));
  return { status, ms: Date.now() - started };
}

/** For waits that are pointless once a child died: its exit status and last log lines, or null while all run. */
export function anyExited(...children: readonly PipelineProcess[]): () => string | null {
  return () => {
    const dead = children.find((c) => c.exitStatus !== null);
    return dead
      ? `${dead.name} exited unexpectedly (${JSON.stringify(dead.exitStatus)}):\n${dead.output()}`
      : null;
  };
}

export interface WaitOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** Says why waiting on is pointless (a child died); checked before every poll. */
  readonly failed?: () => string | null;
  /** What is awaited, for the timeout message. */
  readonly what: string;
}

/**
 * Polls `check` until it returns a truthy value; rejects at the deadline or as soon as `failed` reports
 * something. Unlike racing a poller against a failure, it leaves no loop running after it settles.
 */
export async function waitUntil<T>(
  check: () => T | Promise<T>,
  options: WaitOptions,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + options.timeoutMs;
  let last: unknown;
  for (;;) {
    const failure = options.failed?.();
    if (failure) throw new Error(`while waiting for ${options.what}: ${failure}`);
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${options.what}: not within ${options.timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 200));
  }
}
