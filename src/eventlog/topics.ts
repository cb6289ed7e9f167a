import type { Config } from '../config/schema.ts';
import type { TopicSpec } from './port.ts';

/** Every topic starstream reads or writes, by role. */
export const TOPIC_ROLES = [
  'interactions',
  'items',
  'recommendations',
  'deadLetters',
  'teacherCases',
  'trajectories',
  'itemDeltas',
] as const;
export type TopicRole = (typeof TOPIC_ROLES)[number];

/** Full topic names (prefix included) by role. */
export function topicNames(config: Readonly<Config>): Readonly<Record<TopicRole, string>> {
  const t = config.eventLog.topics;
  const name = (role: TopicRole): string => `${t.prefix}${t[role]}`;
  return {
    interactions: name('interactions'),
    items: name('items'),
    recommendations: name('recommendations'),
    deadLetters: name('deadLetters'),
    teacherCases: name('teacherCases'),
    trajectories: name('trajectories'),
    itemDeltas: name('itemDeltas'),
  };
}

/**
 * The spec of every topic, for `ensureTopics` and `starstream topics create`.
 *
 * - `items` is compacted (the catalogue: the latest record per item id is what matters); the lag before
 *   compaction and the tombstone retention are a day, so a consumer that rebuilds the catalogue sees deletions.
 * - the DLQ keeps records longer (`deadLettersRetentionMs`) so they can be inspected and replayed.
 * - everything else deletes after `retentionMs`.
 * - `min.insync.replicas` defaults to min(2, replication): with acks=all a write then survives one broker loss
 *   where replication allows it, and a single-broker cluster still accepts writes.
 * - `max.message.bytes` is `maxMessageBytes` on every topic but the DLQ, which gets twice that plus 64 KiB: a
 *   dead letter repeats the original key (record key and envelope), holds the original headers and value, and
 *   adds the reason, source and mirror headers. A DLQ at the input's limit would refuse the dead letter of a
 *   record the input accepted, and that batch would be retried forever (issue 16). Dead letters are also
 *   bounded on their own (`deadLetterMaxBytes`), for DLQ topics this command did not create.
 */
export function topicSpecs(config: Readonly<Config>): TopicSpec[] {
  const t = config.eventLog.topics;
  const names = topicNames(config);
  const minIsr = String(t.minInSyncReplicas ?? Math.min(2, t.replicationFactor));
  const base = { partitions: t.partitions, replicationFactor: t.replicationFactor };
  const maxMessageBytes = String(t.maxMessageBytes);
  const deleting = (retentionMs: number, maxBytes = maxMessageBytes): Record<string, string> => ({
    'cleanup.policy': 'delete',
    'retention.ms': String(retentionMs),
    'min.insync.replicas': minIsr,
    'max.message.bytes': maxBytes,
  });
  const day = String(86_400_000);
  return [
    { name: names.interactions, ...base, config: deleting(t.retentionMs) },
    {
      name: names.items,
      ...base,
      config: {
        'cleanup.policy': 'compact',
        'min.compaction.lag.ms': day,
        'delete.retention.ms': day,
        'min.insync.replicas': minIsr,
        'max.message.bytes': maxMessageBytes,
      },
    },
    { name: names.recommendations, ...base, config: deleting(t.retentionMs) },
    { name: names.deadLetters, ...base, config: deleting(t.deadLettersRetentionMs, String(deadLetterTopicMaxBytes(t.maxMessageBytes))) },
    { name: names.teacherCases, ...base, config: deleting(t.retentionMs) },
    { name: names.trajectories, ...base, config: deleting(t.retentionMs) },
    { name: names.itemDeltas, ...base, config: deleting(t.retentionMs) },
  ];
}

/** The DLQ topic's `max.message.bytes` for inputs limited to `inputMaxBytes` (see `topicSpecs`). */
export function deadLetterTopicMaxBytes(inputMaxBytes: number): number {
  return 2 * inputMaxBytes + 65_536;
}
