import { fmt, popularitySentence } from '../../cst/index.ts';
import { popularityOf } from '../../stages/evidence/index.ts';
import { itemIdArg, itemIdsArg, limitArg, limitOf, objectArgs } from './args.ts';
import { boundText, caseMark, categoryList, itemLabel } from './render.ts';
import type { Tool, ToolLimits } from './types.ts';

/** Tools over the store's aggregate signals: embedding neighbours and popularity/trend. */

export function embeddingNeighboursTool(limits: ToolLimits): Tool {
  return {
    name: 'embedding_neighbours',
    description: "Nearest items in the collaborative embedding space: to an item when itemId is given, else to the user's taste vector. The user's own history is left out.",
    argsSchema: objectArgs({ itemId: itemIdArg, limit: limitArg(limits.maxItems) }),
    idArgs: ['itemId'],
    async run(args, ctx) {
      const itemId = args.itemId as string | undefined;
      const limit = limitOf(args, limits.maxItems);
      let query: Float32Array | null;
      let from: string;
      if (itemId !== undefined) {
        const item = (await ctx.reader.itemsById([itemId])).get(itemId);
        query = item && item.firstSeenMs <= item.lastSeenMs ? item.vector : null;
        from = item ? itemLabel(itemId, item.title) : itemId;
      } else {
        query = await ctx.reader.userVector();
        from = "the user's taste vector";
      }
      if (!query) return { text: `${from}: no embedding yet (no interactions before the case)`, surfaced: [] };
      const exclude = new Set(ctx.history);
      if (itemId !== undefined) exclude.add(itemId);
      const hits = await ctx.reader.searchItems(query, limit, exclude);
      const profiles = await ctx.reader.itemsById(hits.map((h) => h.id));
      const lines = [
        `nearest items to ${from} by collaborative embedding (inner product):`,
        ...hits.map((h) => {
          const p = profiles.get(h.id);
          return `- ${itemLabel(h.id, p?.title)}${categoryList(p?.categories ?? [])}${caseMark(h.id, ctx)}: taste match ${fmt.fixed2(h.score)}`;
        }),
      ];
      if (hits.length === 0) lines.push('- none');
      return { text: boundText(lines, limits.maxOutputChars), surfaced: hits.map((h) => h.id) };
    },
  };
}

export function popularityTool(limits: ToolLimits): Tool {
  return {
    name: 'popularity',
    description: 'Popularity and trend (rising, steady, cooling) of the given items, or the most popular items at the time of the case when no itemIds are given.',
    argsSchema: objectArgs({ itemIds: itemIdsArg(limits.maxItems), limit: limitArg(limits.maxItems) }),
    idArgs: ['itemIds'],
    async run(args, ctx) {
      const asked = args.itemIds as string[] | undefined;
      const ids = asked ?? (await ctx.reader.popularItems(limitOf(args, limits.maxItems))).map((h) => h.id);
      const profiles = await ctx.reader.itemsById(ids);
      const lines = [asked ? 'popularity at the time of the case:' : 'most popular items at the time of the case:'];
      for (const id of ids) {
        const p = profiles.get(id);
        if (!p) {
          lines.push(`- ${id}: unknown at the time of the case`);
          continue;
        }
        const pop = popularityOf(p, ctx.reader.atMs, ctx.evidence);
        const short = `${fmt.int(pop.short)} in the short window`;
        lines.push(`- ${itemLabel(id, p.title)}${categoryList(p.categories)}${caseMark(id, ctx)}: ${popularitySentence(ctx.templates, pop)} ${short}.`);
      }
      return { text: boundText(lines, limits.maxOutputChars), surfaced: asked ? [] : ids };
    },
  };
}
