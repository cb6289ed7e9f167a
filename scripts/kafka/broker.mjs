// A real single-node Kafka (KRaft, combined broker + controller) in a child JVM, for tests and local runs:
// no Docker, jars from Maven (see libs.mjs). Free ports, a temp data dir, small heap, test-friendly settings.
//
//   const broker = await startLocalBroker();   // { brokers: '127.0.0.1:PORT', ... }
//   await broker.kill(); await broker.restart(); // fault tests: SIGKILL, then the same ports and data
//   await broker.stop();                        // stops it and deletes the data dir it created
//
// If this Node process dies without stopping the broker (even by SIGKILL), the JVM goes too: it runs under a
// small shell that stops it when its stdin, a pipe from this process, closes.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout } from 'node:timers';
import kafkajs from 'kafkajs';
import { freePort, GroupProcess, HOST, started } from '../local-process.mjs';
import { ensureKafkaLibs } from './libs.mjs';

const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 10_000;

export { freePort };

/** Kafka's cluster id format: 16 random bytes, base64url without padding (never starting with '-'). */
function clusterId() {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function serverProperties({ port, controllerPort, logDir }) {
  return `# written by scripts/kafka/broker.mjs: a single-node KRaft broker for tests
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${controllerPort}
listeners=PLAINTEXT://${HOST}:${port},CONTROLLER://${HOST}:${controllerPort}
advertised.listeners=PLAINTEXT://${HOST}:${port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${logDir}
num.partitions=3
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
# After a SIGKILL the restarted broker waits for its previous registration to expire: keep that short.
broker.session.timeout.ms=2000
broker.heartbeat.interval.ms=500
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
log.cleaner.backoff.ms=1000
`;
}

const LOG4J = `status = warn
rootLogger.level = \${env:KAFKA_BROKER_LOG_LEVEL:-WARN}
rootLogger.appenderRef.out.ref = out
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
`;

/**
 * Starts a local broker and resolves once it serves clients (group coordinator included).
 * @param {{ dataDir?: string, port?: number, controllerPort?: number, heapMb?: number, quickJit?: boolean,
 *   log?: (line: string) => void }} [options]
 */
export async function startLocalBroker(options = {}) {
  const libs = await ensureKafkaLibs({ log: options.log });
  const ownsDataDir = !options.dataDir;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'starstream-kafka-')));
  const broker = new LocalBroker({
    libs,
    dataDir,
    ownsDataDir,
    port: options.port ?? (await freePort()),
    controllerPort: options.controllerPort ?? (await freePort()),
    heapMb: options.heapMb ?? 384,
    quickJit: options.quickJit ?? true,
    log: options.log ?? (() => {}),
  });
  return started(broker);
}

class LocalBroker {
  #opts;
  #process = new GroupProcess('starstream-kafka');

  constructor(opts) {
    this.#opts = opts;
    this.port = opts.port;
    this.controllerPort = opts.controllerPort;
    this.dataDir = opts.dataDir;
    this.brokers = `${HOST}:${opts.port}`;
  }

  get running() {
    return this.#process.running;
  }

  /** The broker's last log lines (WARN and above unless KAFKA_BROKER_LOG_LEVEL says otherwise). */
  logTail() {
    return this.#process.logTail();
  }

  async start() {
    if (this.running) return;
    const { dataDir, libs } = this.#opts;
    const logDir = join(dataDir, 'logs');
    const props = join(dataDir, 'server.properties');
    const log4j = join(dataDir, 'log4j2.properties');
    await mkdir(dataDir, { recursive: true });
    await writeFile(
      props,
      serverProperties({ port: this.port, controllerPort: this.controllerPort, logDir }),
    );
    await writeFile(log4j, LOG4J);
    const jvm = this.#jvmArgs(log4j, libs);
    // Formatting is once per data dir: a restart must find the data it left.
    if (!existsSync(join(logDir, 'meta.properties'))) {
      await this.#runToEnd([...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId(), '-c', props]);
    }
    const startedAt = Date.now();
    this.#process.start('java', [...jvm, 'kafka.Kafka', props]);
    await this.#waitReady(startedAt + READY_TIMEOUT_MS);
    this.#opts.log(`local Kafka broker ready on ${this.brokers} after ${Date.now() - startedAt} ms`);
  }

  /** Graceful (SIGTERM, then SIGKILL after a deadline); deletes the data dir if startLocalBroker made it. */
  async stop() {
    await this.#process.stop({ how: 'stdin', graceMs: STOP_TIMEOUT_MS });
    if (this.#opts.ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
  }

  /** SIGKILL, keeping the data dir: what a crash looks like to clients. */
  async kill() {
    await this.#process.kill();
  }

  /** Stops (gracefully unless `hard`) and starts again on the same ports and data. */
  async restart({ hard = false } = {}) {
    if (hard) await this.kill();
    else await this.#process.stop({ how: 'stdin', graceMs: STOP_TIMEOUT_MS });
    await this.start();
  }

  #jvmArgs(log4j, libs) {
    return [
      `-Xms64m`,
      `-Xmx${this.#opts.heapMb}m`,
      '-XX:+UseSerialGC',
      // C1 only: starts faster and burns less CPU compiling, which tests care about; benchmarks turn it off.
      ...(this.#opts.quickJit ? ['-XX:TieredStopAtLevel=1'] : []),
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${log4j}`,
      `-Dkafka.logs.dir=${join(this.dataDir, 'broker-logs')}`,
      '-cp',
      `${libs}/*`,
    ];
  }

  #runToEnd(args) {
    return new Promise((resolve, reject) => {
      const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (c) => this.#process.remember(c));
      child.stderr.on('data', (c) => this.#process.remember(c));
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0
          ? resolve()
          : reject(new Error(`kafka storage format failed (${code}):\n${this.logTail()}`)),
      );
    });
  }

  async #waitReady(deadline) {
    let exited = false;
    void this.#process.exited.then(() => (exited = true));
    const fail = (why) => new Error(`local Kafka broker ${why}:\n${this.logTail()}`);
    while (!(await canConnect(this.port))) {
      if (exited) throw fail('exited during startup');
      if (Date.now() > deadline) throw fail(`did not listen on ${this.brokers} in time`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Listening is not serving: wait until the group coordinator answers, so the first test does not pay for
    // the offsets topic's creation in its own timeouts.
    const kafka = new kafkajs.Kafka({
      brokers: [this.brokers],
      logLevel: kafkajs.logLevel.NOTHING,
      retry: { retries: 0 },
    });
    const admin = kafka.admin();
    try {
      for (;;) {
        if (exited) throw fail('exited during startup');
        try {
          await admin.connect();
          await admin.describeGroups(['starstream-readiness-probe']);
          return;
        } catch (err) {
          if (Date.now() > deadline) throw fail(`did not serve clients in time (${err.message})`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
