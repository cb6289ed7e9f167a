// Starts the real services that the selected test files need, once per test run, and says which it used.
//
// Kafka: a selected test file needs a broker when its path contains "kafka" (test/eventlog/kafka.test.ts,
// anything under a kafka/ folder, *.kafka.test.ts). The broker comes from, in order:
//   1. KAFKA_BROKERS, if set (comma-separated bootstrap servers): used as it is;
//   2. testcontainers (apache/kafka), only if a Docker engine answers within a second;
//   3. the local KRaft broker of scripts/kafka/ (Java 17 + Maven; jars cached in .cache/kafka/libs).
// The tests read the bootstrap servers from KAFKA_BROKERS.
import { existsSync } from 'node:fs';
import { request } from 'node:http';

const KAFKA_IMAGE = 'apache/kafka:4.1.0';

export function needsKafka(files) {
  return files.some((file) => /kafka/i.test(file));
}

export async function startServices(files) {
  const stops = [];
  const env = {};
  if (needsKafka(files)) {
    const kafka = await startKafka();
    env.KAFKA_BROKERS = kafka.brokers;
    stops.push(kafka.stop);
    console.log(`test services: Kafka at ${kafka.brokers} (${kafka.source})`);
  }
  return {
    env,
    stop: async () => {
      for (const stop of stops.reverse())
        await stop().catch((err) => console.error(`stopping a test service: ${err.message}`));
    },
  };
}

async function startKafka() {
  if (process.env.KAFKA_BROKERS) {
    return { brokers: process.env.KAFKA_BROKERS, source: 'KAFKA_BROKERS', stop: async () => {} };
  }
  if (await dockerAnswers()) {
    try {
      return await startKafkaContainer();
    } catch (err) {
      console.error(
        `test services: testcontainers could not start Kafka (${err.message}); using the local broker`,
      );
    }
  }
  const { startLocalBroker } = await import('./kafka/broker.mjs');
  const started = Date.now();
  const broker = await startLocalBroker({ log: (line) => console.log(`test services: ${line}`) });
  return {
    brokers: broker.brokers,
    source: `local KRaft broker, started in ${Date.now() - started} ms`,
    stop: () => broker.stop(),
  };
}

/** True when a Docker engine answers /_ping within a second (DOCKER_HOST over tcp or unix, or the default socket). */
function dockerAnswers() {
  const host = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  let target;
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    if (!existsSync(socketPath)) return Promise.resolve(false);
    target = { socketPath };
  } else if (host.startsWith('tcp://')) {
    const url = new URL(host.replace('tcp://', 'http://'));
    target = { host: url.hostname, port: Number(url.port || 2375) };
  } else {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function startKafkaContainer() {
  const { GenericContainer, Wait } = await import('testcontainers');
  const { freePort } = await import('./kafka/broker.mjs');
  // The advertised listener must name the port the host sees, so that port is fixed before the start.
  const port = await freePort();
  const started = Date.now();
  const container = await new GenericContainer(KAFKA_IMAGE)
    .withExposedPorts({ container: 9092, host: port })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: 'PLAINTEXT://0.0.0.0:9092,CONTROLLER://localhost:9093',
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${port}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS: '1000',
      KAFKA_NUM_PARTITIONS: '3',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .withStartupTimeout(120_000)
    .start();
  return {
    brokers: `127.0.0.1:${port}`,
    source: `testcontainers ${KAFKA_IMAGE}, started in ${Date.now() - started} ms`,
    stop: async () => {
      await container.stop();
    },
  };
}
