import { fmt, neighboursSentence } from '../../cst/index.ts';
import { countEngagement } from '../../stages/evidence/index.ts';
import type { UserProfile } from '../../store/port.ts';
import { itemIdArg, limitArg, limitOf, objectArgs } from './args.ts';
import { boundText, caseMark, categoryList, itemLabel } from './render.ts';
import type { Tool, ToolContext, ToolLimits } from './types.ts';

/**
 * Collaborative-filtering traversals over the store's timestamped neighbourhoods, cut at the case's time
 * (see `AsOfReader`): item-CF walks item → its recent users → what they had around it; user-CF walks
 * user → users with overlapping histories or similar taste vectors → what they engaged with next.
 */

export function itemCfTool(limits: ToolLimits): Tool {
  return {
    name: 'item_cf',
    description: 'Item-to-item collaborative filtering: the recent users of an item and the other items they had within a few steps of it (co-occurrence).',
    argsSchema: objectArgs({ itemId: itemIdArg, limit: limitArg(limits.maxItems) }, ['itemId']),
    idArgs: ['itemId'],
    async run(args, ctx) {
      const itemId = args.itemId as string;
      const window = ctx.evidence.cooccurrenceWindow;
      const item = (await ctx.reader.itemsById([itemId])).get(itemId);
      if (!item) return { text: `${itemId}: unknown at the time of the case`, surfaced: [] };
      const audience = await ctx.reader.usersById(item.recentUsers.map((u) => u.id));
      const counts = new Map<string, { together: number; after: number }>();
      for (const user of audience.values()) {
        const history = user.recentItems;
        const at = history.findIndex((r) => r.id === itemId);
        if (at < 0) continue;
        const seen = new Set<string>([itemId]);
        for (let j = Math.max(0, at - window); j <= Math.min(history.length - 1, at + window); j++) {
          const other = history[j]!.id;
          if (seen.has(other)) continue;
          seen.add(other);
          const c = counts.get(other) ?? { together: 0, after: 0 };
          c.together += 1;
          if (j < at) c.after += 1; // most recent first: a smaller index came later
          counts.set(other, c);
        }
      }
      const top = [...counts.entries()]
        .sort((a, b) => b[1].together - a[1].together || b[1].after - a[1].after || (a[0] < b[0] ? -1 : 1))
        .slice(0, limitOf(args, limits.maxItems));
      const profiles = await ctx.reader.itemsById(top.map(([id]) => id));
      const lines = [
        `item-CF from ${itemLabel(itemId, item.title)}: ${fmt.int(audience.size)} other recent users before the case; items they had within ${fmt.int(window)} steps of it:`,
        ...top.map(([id, c]) => {
          const p = profiles.get(id);
          return `- ${itemLabel(id, p?.title)}${categoryList(p?.categories ?? [])}${caseMark(id, ctx)}: with it for ${fmt.int(c.together)} users, ${fmt.int(c.after)} of them after it`;
        }),
      ];
      if (top.length === 0) lines.push('- no co-occurring items');
      return { text: boundText(lines, limits.maxOutputChars), surfaced: top.map(([id]) => id) };
    },
  };
}

export function userCfTool(limits: ToolLimits): Tool {
  return {
    name: 'user_cf',
    description: 'User-to-user collaborative filtering: users whose histories overlap with this user (or whose taste vectors are closest) and what they engaged with next; also how many of them engaged with each candidate.',
    argsSchema: objectArgs({ limit: limitArg(limits.maxItems) }),
    idArgs: [],
    async run(args, ctx) {
      const neighbours = await similarUsers(ctx);
      const next = new Map<string, number>();
      for (const { user, overlapAt } of neighbours) {
        // Items after their latest shared item (most recent first, so those before its index); without a
        // shared item, their latest few.
        const after = overlapAt >= 0 ? user.recentItems.slice(0, overlapAt) : user.recentItems.slice(0, ctx.evidence.cooccurrenceWindow);
        for (const id of new Set(after.map((r) => r.id))) if (!ctx.history.has(id)) next.set(id, (next.get(id) ?? 0) + 1);
      }
      const top = [...next.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, limitOf(args, limits.maxItems));
      const engagement = countEngagement(neighbours.map((n) => n.user), ctx.candidates);
      const engaged = [...engagement.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, limits.maxItems);
      const profiles = await ctx.reader.itemsById([...top.map(([id]) => id), ...engaged.map(([id]) => id)]);
      const sharing = neighbours.filter((n) => n.overlap > 0).length;
      const total = neighbours.length;
      const lines = [
        `user-CF: ${fmt.int(total)} similar users (${fmt.int(sharing)} share items with this user, the others by taste vector); what they engaged with next:`,
        ...top.map(([id, n]) => {
          const p = profiles.get(id);
          return `- ${itemLabel(id, p?.title)}${categoryList(p?.categories ?? [])}${caseMark(id, ctx)}: ${fmt.int(n)} of ${fmt.int(total)} similar users`;
        }),
      ];
      if (top.length === 0) lines.push('- nothing (no similar users with later items)');
      lines.push('candidates among their recent items:');
      for (const [id, n] of engaged) lines.push(`- ${itemLabel(id, profiles.get(id)?.title)}: ${neighboursSentence(ctx.templates, n, total)}`);
      if (engaged.length === 0) lines.push('- none');
      return { text: boundText(lines, limits.maxOutputChars), surfaced: top.map(([id]) => id) };
    },
  };
}

interface SimilarUser {
  readonly user: UserProfile;
  /** How many of the case user's items are in their history. */
  readonly overlap: number;
  /** Index (most recent first) of their latest item shared with the case user; -1 when none. */
  readonly overlapAt: number;
  readonly taste: number;
}

/**
 * Up to `evidence.neighbours` users: those sharing most items with the case user (found through the
 * audiences of the user's items), then the nearest by taste vector, the same neighbourhood size the CST
 * neighbour sentences use.
 */
async function similarUsers(ctx: ToolContext): Promise<SimilarUser[]> {
  const k = ctx.evidence.neighbours;
  if (k === 0) return [];
  const historyItems = await ctx.reader.itemsById([...ctx.history]);
  const shared = new Map<string, number>();
  for (const item of historyItems.values()) for (const u of item.recentUsers) shared.set(u.id, (shared.get(u.id) ?? 0) + 1);
  const byOverlap = [...shared.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, k).map(([id]) => id);
  const vector = await ctx.reader.userVector();
  const nearest = vector ? await ctx.reader.searchUsers(vector, k) : [];
  const taste = new Map(nearest.map((n) => [n.id, n.score]));
  const profiles = await ctx.reader.usersById([...new Set([...byOverlap, ...nearest.map((n) => n.id)])]);
  const out: SimilarUser[] = [];
  for (const user of profiles.values()) {
    const overlapAt = user.recentItems.findIndex((r) => ctx.history.has(r.id));
    const overlap = new Set(user.recentItems.filter((r) => ctx.history.has(r.id)).map((r) => r.id)).size;
    out.push({ user, overlap, overlapAt, taste: taste.get(user.userId) ?? Number.NEGATIVE_INFINITY });
  }
  out.sort((a, b) => b.overlap - a.overlap || b.taste - a.taste || (a.user.userId < b.user.userId ? -1 : 1));
  return out.slice(0, k);
}
