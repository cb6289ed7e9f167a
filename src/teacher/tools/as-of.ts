import type { TeacherCase } from '../../domain/teacher.ts';
import type { ItemProfile, Neighbour, UserProfile, VectorStore } from '../../store/port.ts';

/**
 * The teacher's read-only view of the live store, cut at the case's time as far as the store allows, so a
 * tool never shows the agents what the user (or anyone) did after the case: that would leak the label the
 * outcome join later measures the teacher against.
 *
 * Exact cuts, because the store keeps timestamps for them:
 * - users' recent histories and items' recent audiences keep only entries at or before the case's time;
 * - items first seen after the case's time do not exist for the tools (catalogue-only items do);
 * - the case's own user never appears in an item's audience (their history comes from the case itself).
 *
 * Not cut, because the store keeps them as running aggregates: embedding vectors and decayed popularity
 * include what the stream learned between the case and the teacher run (the worker's backlog, normally
 * seconds). The tools never read the aggregated co-occurrence maps, which would count the user's own next
 * step; item-CF is traversed from the timestamped audiences and histories instead.
 *
 * Profiles are cached for the run (a run is a few dozen reads of mostly the same ids).
 */
export class AsOfReader {
  readonly atMs: number;
  readonly userId: string;
  private readonly items = new Map<string, ItemProfile | null>();
  private readonly users = new Map<string, UserProfile | null>();

  constructor(
    private readonly store: VectorStore,
    teacherCase: Pick<TeacherCase, 'atMs' | 'user'>,
  ) {
    this.atMs = teacherCase.atMs;
    this.userId = teacherCase.user.userId;
  }

  async itemsById(ids: readonly string[]): Promise<Map<string, ItemProfile>> {
    const missing = [...new Set(ids)].filter((id) => !this.items.has(id));
    if (missing.length) {
      const found = await this.store.getItems(missing);
      for (const id of missing) {
        const profile = found.get(id);
        this.items.set(id, profile && this.existed(profile) ? this.cutItem(profile) : null);
      }
    }
    return pick(ids, this.items);
  }

  async usersById(ids: readonly string[]): Promise<Map<string, UserProfile>> {
    const missing = [...new Set(ids)].filter((id) => !this.users.has(id));
    if (missing.length) {
      const found = await this.store.getUsers(missing);
      for (const id of missing) {
        const profile = found.get(id);
        this.users.set(id, profile && profile.firstSeenMs <= this.atMs ? this.cutUser(profile) : null);
      }
    }
    return pick(ids, this.users);
  }

  /** The case user's collaborative vector, or null for a user the store has no vector for. */
  async userVector(): Promise<Float32Array | null> {
    const found = await this.store.getUsers([this.userId]);
    const profile = found.get(this.userId);
    return profile && profile.interactionCount > 0 ? profile.vector : null;
  }

  /** Nearest items that existed at the case's time, best first. */
  async searchItems(query: Float32Array, k: number, exclude: ReadonlySet<string>): Promise<Neighbour[]> {
    const hits = await this.store.searchItems(query, k + OVERFETCH, exclude);
    const existing = await this.itemsById(hits.map((h) => h.id));
    return hits.filter((h) => existing.has(h.id)).slice(0, k);
  }

  /** Nearest users other than the case's user, best first. */
  async searchUsers(query: Float32Array, k: number): Promise<Neighbour[]> {
    const hits = await this.store.searchUsers(query, k + OVERFETCH, new Set([this.userId]));
    const existing = await this.usersById(hits.map((h) => h.id));
    return hits.filter((h) => existing.has(h.id)).slice(0, k);
  }

  /** The most popular items at the case's time that existed then, best first. */
  async popularItems(k: number): Promise<Neighbour[]> {
    const hits = await this.store.popularItems(k + OVERFETCH, this.atMs);
    const existing = await this.itemsById(hits.map((h) => h.id));
    return hits.filter((h) => existing.has(h.id)).slice(0, k);
  }

  /** An item exists for the tools if the catalogue knows it or the stream saw it by the case's time. */
  private existed(profile: ItemProfile): boolean {
    const catalogueOnly = profile.firstSeenMs > profile.lastSeenMs;
    return catalogueOnly || profile.firstSeenMs <= this.atMs;
  }

  private cutItem(profile: ItemProfile): ItemProfile {
    return {
      ...profile,
      recentUsers: profile.recentUsers.filter((u) => u.atMs <= this.atMs && u.id !== this.userId),
    };
  }

  private cutUser(profile: UserProfile): UserProfile {
    return { ...profile, recentItems: profile.recentItems.filter((r) => r.atMs <= this.atMs) };
  }
}

/** Extra hits asked of a search so that the ones cut away (later items, the user) still leave k. */
const OVERFETCH = 10;

function pick<V>(ids: readonly string[], cache: ReadonlyMap<string, V | null>): Map<string, V> {
  const out = new Map<string, V>();
  for (const id of ids) {
    const v = cache.get(id);
    if (v) out.set(id, v);
  }
  return out;
}
