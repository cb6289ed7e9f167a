import kafkajs, { type LogEntry, type logCreator } from 'kafkajs';
import type { Logger } from '../../logging/logger.ts';

const { logLevel } = kafkajs;

/** kafkajs's level for a pino level, so kafkajs does not build debug entries pino would drop. */
export function kafkaJsLogLevel(pinoLevel: string): kafkajs.logLevel {
  switch (pinoLevel) {
    case 'trace':
    case 'debug':
      return logLevel.DEBUG;
    case 'info':
      return logLevel.INFO;
    case 'warn':
      return logLevel.WARN;
    case 'silent':
      return logLevel.NOTHING;
    default:
      return logLevel.ERROR;
  }
}

/**
 * Routes kafkajs's logs into a pino child (`component: kafkajs`). kafkajs's own fields go under `kafka`, never
 * at the top level, since they carry broker-supplied text.
 *
 * Two kinds of entries are lowered: a broker's error answer on one connection (kafkajs logs each at ERROR
 * before its retry logic decides; what does not heal reaches the caller and is logged there, classified),
 * and the warning that the idempotent producer's retries are limited (deliberate: at-least-once does not need
 * the infinite retries exactly-once does, and a send must fail for shutdown to end).
 */
export function pinoLogCreator(logger: Logger): logCreator {
  const log = logger.child({ component: 'kafkajs' });
  return () => (entry: LogEntry) => {
    const { message, timestamp: _timestamp, ...extra } = entry.log;
    const fields = { namespace: entry.namespace, kafka: extra };
    switch (lowered(entry)) {
      case logLevel.ERROR:
        log.error(fields, message);
        break;
      case logLevel.WARN:
        log.warn(fields, message);
        break;
      case logLevel.INFO:
        log.info(fields, message);
        break;
      default:
        log.debug(fields, message);
    }
  };
}

function lowered(entry: LogEntry): kafkajs.logLevel {
  const message = entry.log.message;
  if (entry.level === logLevel.ERROR && entry.namespace === 'Connection' && message.startsWith('Response ')) {
    return logLevel.WARN;
  }
  if (entry.level === logLevel.WARN && message.startsWith('Limiting retries for the idempotent producer')) {
    return logLevel.DEBUG;
  }
  return entry.level;
}
