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
