import type { Interaction, Recommendation } from '../../domain/events.ts';
import type { RankedCandidate } from '../ranking/index.ts';

/**
 * Publish: one `Recommendation` per triggering interaction, with the triggering event id so consumers can
 * de-duplicate, and a per-user rate limit in event time so a burst of events does not flood the output.
 */

export class UserRateLimiter {
  private readonly lastPublished = new Map<string, number>();

  /**
   * @param minIntervalMs 0 = no limit
   * @param maxTrackedUsers bound on memory: the least recently published users are forgotten first
   */
  constructor(
    private readonly minIntervalMs: number,
    private readonly maxTrackedUsers = 100_000,
  ) {}

  /** True when `userId` may get a recommendation at event time `atMs`; records it if so. */
  allow(userId: string, atMs: number): boolean {
    if (this.minIntervalMs === 0) return true;
    const last = this.lastPublished.get(userId);
    if (last !== undefined && atMs - last < this.minIntervalMs) return false;
    // Delete then set moves the user to the end of the Map's insertion order, which makes it an LRU.
    this.lastPublished.delete(userId);
    this.lastPublished.set(userId, atMs);
    if (this.lastPublished.size > this.maxTrackedUsers) {
      this.lastPublished.delete(this.lastPublished.keys().next().value!);
    }
    return true;
  }
}

export function buildRecommendation(
  event: Interaction,
  ranked: readonly RankedCandidate[],
  modelVersion: string,
  receivedAtMs: number,
  nowMs: number,
): Recommendation {
  return {
    eventId: event.eventId,
    userId: event.userId,
    items: ranked.map((r) => ({ itemId: r.evidence.itemId, score: r.score, evidence: r.evidence.sentences })),
    modelVersion,
    generatedAtMs: nowMs,
    pipelineLatencyMs: nowMs - receivedAtMs,
  };
}
