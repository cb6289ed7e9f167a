import type { Topic, TopicReader } from './topic.ts';

/** A partition as a consumer sees it; `id` is a stable map key. */
export interface PartitionRef {
  readonly topic: Topic;
  readonly partition: number;
  readonly id: string;
}

/** A running consumer of a group. */
export interface GroupMember {
  readonly topics: readonly Topic[];
  /** Something changed that may let the member fetch: new records, a new assignment, a partition freed. */
  wake(): void;
}

/**
 * A consumer group of the embedded log: committed offsets per partition, the running members, and which
 * member owns which partition.
 *
 * Several members: the partitions of the topics they subscribe to (sorted by topic, then partition) are dealt
 * round-robin over the members in the order they joined, among those subscribed to that topic; every join and
 * leave deals again. A partition whose batch is still in flight on its previous owner is locked until that
 * batch has committed or failed, so the new owner starts from the committed offset and no partition is ever
 * handled by two members at once. Committed offsets outlive the members (as Kafka's do), so a group that
 * stops for good keeps holding back truncation and, past the backlog bound, the topic's producers.
 */
export class Group implements TopicReader {
  private readonly positions = new Map<Topic, number[]>();
  private readonly members: GroupMember[] = [];
  private assignments = new Map<GroupMember, readonly PartitionRef[]>();
  private readonly inFlight = new Set<string>();

  constructor(readonly id: string) {}

  /**
   * Starts reading `topic` if the group does not already: from the oldest record held, or from the log end.
   * The start position is fixed here, when the consumer is created, not at its first fetch.
   */
  subscribe(topic: Topic, fromBeginning: boolean): void {
    if (this.positions.has(topic)) return;
    this.positions.set(
      topic,
      topic.partitions.map((log) => (fromBeginning ? log.startOffset : log.endOffset)),
    );
    topic.readers.add(this);
  }

  /** Whether the group reads `topic` (a consumer of it was created). */
  subscribes(topic: Topic): boolean {
    return this.positions.has(topic);
  }

  committed(topic: Topic, partition: number): number {
    return this.positions.get(topic)?.[partition] ?? topic.partitions[partition]!.endOffset;
  }

  commit(topic: Topic, partition: number, nextOffset: number): void {
    const positions = this.positions.get(topic);
    if (!positions || (positions[partition] ?? 0) >= nextOffset) return;
    positions[partition] = nextOffset;
    topic.committedChanged(partition);
  }

  /**
   * Moves the group's position on `partition` to `nextOffset`, backwards too (`ConsumerOptions.startAt`). The
   * caller checks the offset against the partition's bounds.
   */
  seek(topic: Topic, partition: number, nextOffset: number): void {
    const positions = this.positions.get(topic);
    if (!positions) return;
    positions[partition] = nextOffset;
    topic.committedChanged(partition);
  }

  notify(): void {
    for (const member of this.members) member.wake();
  }

  join(member: GroupMember): void {
    this.members.push(member);
    this.rebalance();
  }

  leave(member: GroupMember): void {
    const i = this.members.indexOf(member);
    if (i < 0) return;
    this.members.splice(i, 1);
    this.rebalance();
  }

  assignment(member: GroupMember): readonly PartitionRef[] {
    return this.assignments.get(member) ?? [];
  }

  /** Claims a partition for one batch; false while another member's batch on it is in flight. */
  tryLock(ref: PartitionRef): boolean {
    if (this.inFlight.has(ref.id)) return false;
    this.inFlight.add(ref.id);
    return true;
  }

  unlock(ref: PartitionRef): void {
    this.inFlight.delete(ref.id);
    // The partition may have moved to another member while it was locked: let that one try now.
    if (this.members.length > 1) this.notify();
  }

  private rebalance(): void {
    const topics = [...new Set(this.members.flatMap((m) => m.topics))].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    const next = new Map<GroupMember, PartitionRef[]>(this.members.map((m) => [m, []]));
    let turn = 0;
    for (const topic of topics) {
      const eligible = this.members.filter((m) => m.topics.includes(topic));
      for (const log of topic.partitions) {
        const owner = eligible[turn++ % eligible.length]!;
        next.get(owner)!.push({ topic, partition: log.partition, id: `${topic.name}\u0000${log.partition}` });
      }
    }
    this.assignments = next;
    this.notify();
  }
}
