import { fmt, popularitySentence, sanitiseTitle } from '../../cst/index.ts';
import { popularityOf } from '../../stages/evidence/index.ts';
import { itemIdsArg, limitArg, limitOf, objectArgs } from './args.ts';
import { beforeCase, boundText, caseMark, categoryList, itemLabel } from './render.ts';
import type { Tool, ToolLimits } from './types.ts';

/** Tools over what the case itself holds or the catalogue says: the user's history, item details, CST evidence. */

export function userHistoryTool(limits: ToolLimits): Tool {
  return {
    name: 'user_history',
    description: "The user's interactions before the case, most recent first, with categories, and the user's category mix.",
    argsSchema: objectArgs({ limit: limitArg(limits.maxItems) }),
    idArgs: [],
    async run(args, ctx) {
      const user = ctx.teacherCase.user;
      const recent = user.recentItems.slice(0, limitOf(args, limits.maxItems));
      const profiles = await ctx.reader.itemsById(recent.map((r) => r.itemId));
      const mix = user.categoryMix.slice(0, 5).map((m) => `${sanitiseTitle(m.category, '?')} ${fmt.percent(m.share)}`);
      const lines = [
        `user ${user.userId}: ${fmt.int(user.interactionCount)} interactions in total; category mix of recent items: ${mix.join(', ') || 'none'}`,
        ...recent.map((r) => {
          const categories = categoryList(profiles.get(r.itemId)?.categories ?? []);
          return `- ${itemLabel(r.itemId, r.title)}${categories}, ${beforeCase(r.atMs, ctx.teacherCase.atMs)}`;
        }),
      ];
      if (recent.length === 0) lines.push('- no interactions before the case (a cold user)');
      return { text: boundText(lines, limits.maxOutputChars), surfaced: recent.map((r) => r.itemId) };
    },
  };
}

export function itemDetailsTool(limits: ToolLimits): Tool {
  return {
    name: 'item_details',
    description: 'Title, categories, age and current popularity of items.',
    argsSchema: objectArgs({ itemIds: itemIdsArg(limits.maxItems) }, ['itemIds']),
    idArgs: ['itemIds'],
    async run(args, ctx) {
      const ids = args.itemIds as string[];
      const profiles = await ctx.reader.itemsById(ids);
      const lines = ids.map((id) => {
        const p = profiles.get(id);
        if (!p) return `- ${id}: unknown at the time of the case`;
        const pop = popularityOf(p, ctx.reader.atMs, ctx.evidence);
        const seen = p.firstSeenMs > p.lastSeenMs ? 'no interactions yet' : `first seen ${beforeCase(p.firstSeenMs, ctx.reader.atMs)}`;
        return `- ${itemLabel(id, p.title)}${categoryList(p.categories)}${caseMark(id, ctx)}: ${seen}. ${popularitySentence(ctx.templates, pop)}`;
      });
      return { text: boundText(lines, limits.maxOutputChars), surfaced: [] };
    },
  };
}

/** The CST evidence the serving scorer ranked with: exactly what STAR saw for these candidates. */
export function candidateEvidenceTool(limits: ToolLimits): Tool {
  return {
    name: 'candidate_evidence',
    description: 'The collaborative evidence sentences for candidates (co-occurrence, similar users, category fit, taste match, popularity), as of the case.',
    argsSchema: objectArgs({ itemIds: itemIdsArg(limits.maxItems) }, ['itemIds']),
    idArgs: ['itemIds'],
    run(args, ctx) {
      const byId = new Map(ctx.teacherCase.candidates.map((c) => [c.itemId, c]));
      const lines = (args.itemIds as string[]).map((id) => {
        const c = byId.get(id);
        if (!c) return `- ${id}: not a candidate of this case`;
        const sources = c.sources.length ? ` (found by ${c.sources.join(', ')})` : '';
        return `- ${itemLabel(id, c.title)}${categoryList(c.categories)}${sources}: ${c.sentences.join(' ') || 'no evidence'}`;
      });
      return Promise.resolve({ text: boundText(lines, limits.maxOutputChars), surfaced: [] });
    },
  };
}
