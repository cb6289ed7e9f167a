import type { Config } from '../config/schema.ts';
import { createEventLog } from '../eventlog/create.ts';
import type { EventLog, TopicSpec } from '../eventlog/port.ts';
import { topicSpecs } from '../eventlog/topics.ts';
import type { Logger } from '../logging/logger.ts';

/**
 * `starstream topics create`: creates every starstream topic that does not exist yet, with its partitions,
 * replication, retention and compaction (see `topicSpecs`). Existing topics are left as they are. Against the
 * embedded log this only validates the specs: an in-process log has nothing to create ahead of time.
 *
 * @param eventLog for tests; by default the adapter the config names, closed before returning.
 * @returns the specs that were ensured.
 */
export async function topicsCreate(
  config: Readonly<Config>,
  log: Logger,
  eventLog?: EventLog,
): Promise<TopicSpec[]> {
  const specs = topicSpecs(config);
  const target = eventLog ?? createEventLog(config, log);
  try {
    await target.ensureTopics(specs);
    log.info(
      {
        kind: target.kind,
        topics: specs.map((s) => ({
          topic: s.name,
          partitions: s.partitions,
          replicationFactor: s.replicationFactor,
        })),
      },
      'topics ensured',
    );
    return specs;
  } finally {
    if (!eventLog) await target.close();
  }
}

/**
 * `starstream topics create` as the CLI runs it: on Kafka, `topicsCreate` and the topics it ensured; on the
 * embedded log, which has nothing to create ahead of time, the specs are only validated and the line says so
 * instead of reporting a success that did nothing. Returns the line to print.
 */
export async function topicsCreateCommand(config: Readonly<Config>, log: Logger): Promise<string> {
  if (config.eventLog.kind === 'embedded') {
    topicSpecs(config);
    return (
      'topics create: nothing to do on the embedded event log (its topics exist only inside the process that runs ' +
      'the pipeline); set STARSTREAM_EVENT_LOG__KIND=kafka to create them on a Kafka cluster\n'
    );
  }
  const specs = await topicsCreate(config, log);
  return `topics create: ${specs.length} topics ensured on Kafka (${specs.map((s) => s.name).join(', ')})\n`;
}
