import type { Config } from '../config/schema.ts';
import type { Logger } from '../logging/logger.ts';
import { createEmbeddedEventLog } from './embedded/log.ts';
import { createKafkaEventLog } from './kafka/log.ts';
import type { EventLog } from './port.ts';

/** The event log adapter `eventLog.kind` names; for the composition root and the CLI. */
export function createEventLog(config: Readonly<Config>, logger: Logger): EventLog {
  return config.eventLog.kind === 'kafka'
    ? createKafkaEventLog(config.eventLog, logger)
    : createEmbeddedEventLog(config.eventLog, logger);
}
