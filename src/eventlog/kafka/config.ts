import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import kafkajs, {
  type ConsumerConfig,
  type KafkaConfig,
  type ProducerConfig,
  type RetryOptions,
  type SASLOptions,
} from 'kafkajs';
import type { Config } from '../../config/schema.ts';
import { ConfigError } from '../../errors/index.ts';
import type { Logger } from '../../logging/logger.ts';
import { silentLogger } from '../../logging/logger.ts';
import { classifyKafkaError } from './errors.ts';
import { kafkaJsLogLevel, pinoLogCreator } from './logging.ts';

/** The `eventLog.kafka` section of the config. */
export type KafkaSettings = Config['eventLog']['kafka'];

/**
 * The one mapping from starstream's Kafka settings to kafkajs's client options: brokers, TLS (CA, client
 * certificate), SASL (plain, scram-sha-256, scram-sha-512), timeouts, retries and logging. Reads the PEM files
 * named in the settings; throws `ConfigError` naming the field when they are unreadable or inconsistent.
 */
export function toKafkaJsConfig(settings: KafkaSettings, logger: Logger = silentLogger()): KafkaConfig {
  const config: KafkaConfig = {
    clientId: settings.clientId,
    brokers: [...settings.brokers],
    ssl: toTls(settings),
    connectionTimeout: settings.connectionTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    retry: toRetry(settings),
    logLevel: kafkaJsLogLevel(logger.level),
    logCreator: pinoLogCreator(logger),
  };
  const sasl = toSasl(settings);
  if (sasl) config.sasl = sasl;
  return config;
}

/** Consumer options of one group: session and heartbeat timing, a short fetch wait, no topic auto-creation. */
export function toConsumerConfig(settings: KafkaSettings, groupId: string): ConsumerConfig {
  return {
    groupId,
    sessionTimeout: settings.sessionTimeoutMs,
    heartbeatInterval: settings.heartbeatIntervalMs,
    rebalanceTimeout: settings.rebalanceTimeoutMs,
    maxWaitTimeInMs: settings.fetchMaxWaitMs,
    allowAutoTopicCreation: false,
    // kafkajs's default, stated: transactional outputs (`exactlyOnce`) are read only once committed, and records
    // of aborted transactions never.
    readUncommitted: false,
    retry: {
      ...toRetry(settings),
      // kafkajs restarts a crashed consumer for any retriable cause; only the taxonomy's transient ones here.
      restartOnFailure: async (err) => classifyKafkaError(err).retriable,
    },
  };
}

/**
 * Producer options: idempotent (the broker drops the duplicates of a retried batch), which kafkajs supports
 * only with one request in flight per broker, and that also keeps per-partition order across retries.
 * acks=all is per send (`acks: -1`). Topics are not auto-created: `ensureTopics` makes them with the right
 * partitions, where broker auto-creation would use the broker's defaults.
 */
export function toProducerConfig(settings: KafkaSettings): ProducerConfig {
  return {
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
    retry: toRetry(settings),
  };
}

/**
 * A transactional producer's options (`eventLog.kafka.exactlyOnce`): the idempotent producer's, with a
 * `transactionalId` (one per consumed partition, `transactions.ts`) and a transaction timeout above the
 * longest a batch can take to send, so the coordinator does not abort one that is still going.
 */
export function toTransactionalProducerConfig(settings: KafkaSettings, transactionalId: string): ProducerConfig {
  return {
    ...toProducerConfig(settings),
    transactionalId,
    transactionTimeout: Math.max(60_000, 2 * settings.requestTimeoutMs),
  };
}

function toRetry(settings: KafkaSettings): RetryOptions {
  return {
    retries: settings.retry.retries,
    initialRetryTime: settings.retry.initialDelayMs,
    maxRetryTime: settings.retry.maxDelayMs,
    multiplier: settings.retry.multiplier,
    factor: settings.retry.jitter,
  };
}

function toTls(settings: KafkaSettings): ConnectionOptions | boolean {
  const files = {
    sslCaFile: settings.sslCaFile,
    sslCertFile: settings.sslCertFile,
    sslKeyFile: settings.sslKeyFile,
  };
  if (!settings.ssl) {
    const set = Object.entries(files).find(([, v]) => v !== undefined);
    if (set) throw new ConfigError(`eventLog.kafka.${set[0]}`, 'is set but eventLog.kafka.ssl is false');
    return false;
  }
  if (Boolean(settings.sslCertFile) !== Boolean(settings.sslKeyFile)) {
    throw new ConfigError('eventLog.kafka.sslCertFile', 'client TLS needs both sslCertFile and sslKeyFile');
  }
  if (!settings.sslCaFile && !settings.sslCertFile && settings.sslRejectUnauthorized) return true;
  const tls: ConnectionOptions = { rejectUnauthorized: settings.sslRejectUnauthorized };
  if (settings.sslCaFile) tls.ca = [readPem('sslCaFile', settings.sslCaFile)];
  if (settings.sslCertFile && settings.sslKeyFile) {
    tls.cert = readPem('sslCertFile', settings.sslCertFile);
    tls.key = readPem('sslKeyFile', settings.sslKeyFile);
  }
  return tls;
}

function toSasl(settings: KafkaSettings): SASLOptions | undefined {
  const sasl = settings.sasl;
  if (!sasl) return undefined;
  const { username, password } = sasl;
  switch (sasl.mechanism) {
    case 'plain':
      return { mechanism: 'plain', username, password };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username, password };
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username, password };
  }
}

function readPem(field: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`eventLog.kafka.${field}`, `cannot read ${path}`, { cause });
  }
}
