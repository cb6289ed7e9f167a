import type { Interaction, Recommendation } from '../../domain/events.ts';
import type { RankedCandidate } from '../ranking/index.ts';

/**
 * Publish: one `Recommendation` per triggering interaction, with the triggering event id so consumers can
 * de-duplicate, and a per-user rate limit in event time so a burst of events does not flood the output.
 */

export class UserRateLimiter {
  private readonly lastPublished = new Map<string, number>();
  /** Events allowed lately, oldest first: allowing one again is idempotent (see `allow`). */
  private readonly allowedEvents = new Set<string>();

  /**
   * @param minIntervalMs 0 = no limit
   * @param maxTracked bound on memory: the least recently published users (and the oldest allowed events) are forgotten first
   */
  constructor(
    private readonly minIntervalMs: number,
    private readonly maxTracked = 100_000,
  ) {}

  /**
   * True when `userId` may get a recommendation for event `eventId` at event time `atMs`; records it if so.
   * An event allowed before is allowed again: a batch that failed after ranking is redelivered and must
   * publish what it would have, rather than be rate-limited by its own failed attempt.
   */
  allow(userId: string, atMs: number, eventId: string): boolean {
    if (this.minIntervalMs === 0 || this.allowedEvents.has(eventId)) return true;
    const last = this.lastPublished.get(userId);
    if (last !== undefined && atMs - last < this.minIntervalMs) return false;
    // Delete then set moves the user to the end of the Map's insertion order, which makes it an LRU.
    this.lastPublished.delete(userId);
    this.lastPublished.set(userId, atMs);
    if (this.lastPublished.size > this.maxTracked) this.lastPublished.delete(this.lastPublished.keys().next().value!);
    this.allowedEvents.add(eventId);
    if (this.allowedEvents.size > this.maxTracked) this.allowedEvents.delete(this.allowedEvents.values().next().value!);
    return true;
  }
}

export function buildRecommendation(
  event: Interaction,
  ranked: readonly RankedCandidate[],
  modelVersion: string,
  receivedAtMs: number,
  nowMs: number,
  arm: string | null = null,
): Recommendation {
  return {
    eventId: event.eventId,
    userId: event.userId,
    items: ranked.map((r) => ({ itemId: r.evidence.itemId, score: r.score, evidence: r.evidence.sentences })),
    modelVersion,
    arm,
    generatedAtMs: nowMs,
    pipelineLatencyMs: nowMs - receivedAtMs,
  };
}
