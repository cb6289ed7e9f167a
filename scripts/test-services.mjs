// Starts the real services that the selected test files need, once per test run, and says which it used.
//
// Kafka: a selected test file needs a broker when its path contains "kafka" (test/eventlog/kafka.test.ts,
// anything under a kafka/ folder, *.kafka.test.ts). The broker comes from, in order:
//   1. KAFKA_BROKERS, if set (comma-separated bootstrap servers): used as it is;
//   2. testcontainers (apache/kafka), only if a Docker engine answers within a second;
//   3. the local KRaft broker of scripts/kafka/ (Java 17 + Maven; jars cached in .cache/kafka/libs).
// The tests read the bootstrap servers from KAFKA_BROKERS.
//
// Qdrant: a selected test file needs a server when its path contains "qdrant" or "store-outage"
// (test/store/qdrant.test.ts, the outage suites through a TCP proxy), or when its source names QDRANT_URL, the
// variable every Qdrant suite reads. The server comes from scripts/qdrant/server.mjs provideQdrant(), in order:
//   1. QDRANT_URL (and QDRANT_API_KEY), if set: used as it is;
//   2. testcontainers (qdrant/qdrant:v1.17.1), only if a Docker engine answers within a second;
//   3. the binary at ../shared/bin/qdrant beside the repository (QDRANT_BIN overrides it): free ports, a
//      throwaway storage dir, stopped and deleted after the run.
// The tests read the URL from QDRANT_URL. Where none can be had, the run goes on and the Qdrant suites skip
// with the reason, except under CI (CI set and not "false"), where that is an error: CI runs every suite.
import { readFileSync } from 'node:fs';
import { dockerAnswers, provideQdrant } from './qdrant/server.mjs';

const KAFKA_IMAGE = 'apache/kafka:4.1.0';

export function needsKafka(files) {
  return files.some((file) => /kafka/i.test(file));
}

/** Files whose path says Qdrant or a store outage, or whose source reads QDRANT_URL. */
export function needsQdrant(files) {
  return files.some((file) => {
    if (/qdrant|store-outage/i.test(file)) return true;
    try {
      return readFileSync(file, 'utf8').includes('QDRANT_URL');
    } catch {
      return false;
    }
  });
}

/** True under a CI runner (CI=true, CI=1, ...); CI=false or an empty CI is a contributor's machine. */
export function inCi() {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

export async function startServices(files) {
  const stops = [];
  const env = {};
  // Once a service is up, a failure starting the next must not leave the first one running.
  try {
    await startEach(files, env, stops);
  } catch (err) {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    throw err;
  }
  return {
    env,
    stop: async () => {
      for (const stop of stops.reverse())
        await stop().catch((err) => console.error(`stopping a test service: ${err.message}`));
    },
  };
}

async function startEach(files, env, stops) {
  if (needsKafka(files)) {
    const kafka = await startKafka();
    env.KAFKA_BROKERS = kafka.brokers;
    stops.push(kafka.stop);
    console.log(`test services: Kafka at ${kafka.brokers} (${kafka.source})`);
  }
  if (needsQdrant(files)) {
    let qdrant;
    try {
      qdrant = await provideQdrant({ log: (line) => console.log(`test services: ${line}`) });
    } catch (err) {
      if (inCi()) throw new Error(`Qdrant is needed and CI is set: ${err.message}`);
      console.error(`test services: no Qdrant (${err.message}); its suites will skip`);
      return;
    }
    env.QDRANT_URL = qdrant.url;
    if (qdrant.apiKey) env.QDRANT_API_KEY = qdrant.apiKey;
    stops.push(qdrant.stop);
    console.log(`test services: Qdrant at ${qdrant.url} (${qdrant.source})`);
  }
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
