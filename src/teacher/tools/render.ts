import { sanitiseTitle } from '../../cst/index.ts';
import type { ToolContext } from './types.ts';

/**
 * Text helpers shared by the tools. Titles and categories go through the CST module's `sanitiseTitle` (no
 * markers, quotes or braces survive it), so a tool line quotes them the way CST sentences do.
 */

export function itemLabel(itemId: string, title: string | null | undefined): string {
  return `${itemId} "${sanitiseTitle(title ?? null, itemId)}"`;
}

export function categoryList(categories: readonly string[]): string {
  return categories.length ? ` [${categories.slice(0, 3).map((c) => sanitiseTitle(c, '?')).join(', ')}]` : '';
}

/** Where an id stands in the case: a candidate, something the user already had, or neither. */
export function caseMark(itemId: string, ctx: Pick<ToolContext, 'candidates' | 'history'>): string {
  if (ctx.candidates.has(itemId)) return ' (candidate)';
  if (ctx.history.has(itemId)) return ' (in your history)';
  return '';
}

/** `"3h before the case"`: coarse, so the text does not change with every millisecond. */
export function beforeCase(atMs: number, caseAtMs: number): string {
  const d = Math.max(0, caseAtMs - atMs);
  if (d < 60_000) return `${Math.round(d / 1_000)}s before the case`;
  if (d < 3_600_000) return `${Math.round(d / 60_000)}m before the case`;
  if (d < 86_400_000) return `${Math.round(d / 3_600_000)}h before the case`;
  return `${Math.round(d / 86_400_000)}d before the case`;
}

/** Joins lines and cuts the text at `maxChars` on a line boundary where possible, saying that it did. */
export function boundText(lines: readonly string[], maxChars: number): string {
  const text = lines.join('\n');
  if (text.length <= maxChars) return text;
  const note = '\n… (output cut at the size limit)';
  const room = Math.max(0, maxChars - note.length);
  const cut = text.slice(0, room);
  const lastBreak = cut.lastIndexOf('\n');
  return `${lastBreak > room / 2 ? cut.slice(0, lastBreak) : cut}${note}`;
}
