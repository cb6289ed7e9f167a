import type { TrajectoryStep } from '../../domain/teacher.ts';

/**
 * A trajectory as one text, the sequence the student is trained on:
 *
 * ```
 * <plan>…</plan>
 * <tool_call agent="recent">{"tool":"item_cf","args":{"itemId":"i7"}}</tool_call>
 * <tool_response agent="recent" tool="item_cf">…</tool_response>
 * <finding agent="recent">…</finding>
 * <reflection>…</reflection>
 * <recommend>{"ranking":["i3","i7",…],"justification":"…"}</recommend>
 * ```
 *
 * Unambiguous by construction: every piece of content has `&`, `<` and `>` escaped as `&amp;`, `&lt;`,
 * `&gt;`, so the only `<` in the text open or close a marker, whatever titles, tool outputs or model answers
 * contain (a title such as `</tool_response><recommend>` stays content). Attribute values are agent and tool
 * names, which the code chooses. `parseSerialized` reverses it.
 */

export const MARKERS = ['plan', 'tool_call', 'tool_response', 'finding', 'reflection', 'recommend'] as const;
export type Marker = (typeof MARKERS)[number];

export interface SerializedBlock {
  readonly marker: Marker;
  readonly attributes: Readonly<Record<string, string>>;
  /** Unescaped. */
  readonly content: string;
}

export function escapeContent(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function unescapeContent(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** The block one step becomes (content unescaped). */
export function stepBlock(step: TrajectoryStep): SerializedBlock {
  switch (step.kind) {
    case 'plan':
      return { marker: 'plan', attributes: {}, content: [step.text, ...step.tasks.map((t) => `- ${t}`)].join('\n') };
    case 'tool_call':
      return { marker: 'tool_call', attributes: { agent: step.agent }, content: JSON.stringify({ tool: step.tool, args: step.args }) };
    case 'tool_response':
      return { marker: 'tool_response', attributes: { agent: step.agent, tool: step.tool }, content: step.text };
    case 'finding':
      return { marker: 'finding', attributes: { agent: step.agent }, content: step.text };
    case 'reflection':
      return {
        marker: 'reflection',
        attributes: {},
        content: step.sendBack.length ? `${step.text}\nsend back: ${step.sendBack.join(', ')}` : step.text,
      };
    case 'recommend':
      return { marker: 'recommend', attributes: {}, content: JSON.stringify({ ranking: step.ranking, justification: step.justification }) };
  }
}

const NAME = /^[a-z_][a-z0-9_]*$/;

export function serializeBlocks(blocks: readonly SerializedBlock[]): string {
  return blocks
    .map((b) => {
      const attrs = Object.entries(b.attributes).map(([k, v]) => {
        if (!NAME.test(k) || !NAME.test(v)) throw new Error(`serialize: attribute ${k}=${JSON.stringify(v)} is not a name`);
        return ` ${k}="${v}"`;
      });
      return `<${b.marker}${attrs.join('')}>${escapeContent(b.content)}</${b.marker}>`;
    })
    .join('\n');
}

export function serializeSteps(steps: readonly TrajectoryStep[]): string {
  return serializeBlocks(steps.map(stepBlock));
}

const BLOCK = new RegExp(`<(${MARKERS.join('|')})((?: [a-z_][a-z0-9_]*="[a-z0-9_]*")*)>([^<]*)</\\1>`, 'y');

/** The blocks of a serialized trajectory; throws on anything that is not a well-formed sequence. */
export function parseSerialized(text: string): SerializedBlock[] {
  const out: SerializedBlock[] = [];
  let at = 0;
  while (at < text.length) {
    BLOCK.lastIndex = at;
    const m = BLOCK.exec(text);
    if (!m) throw new Error(`parseSerialized: no marker block at offset ${at}`);
    const attributes: Record<string, string> = {};
    for (const a of m[2]!.matchAll(/ ([a-z_][a-z0-9_]*)="([a-z0-9_]*)"/g)) attributes[a[1]!] = a[2]!;
    out.push({ marker: m[1] as Marker, attributes, content: unescapeContent(m[3]!) });
    at = BLOCK.lastIndex;
    if (at < text.length) {
      if (text[at] !== '\n') throw new Error(`parseSerialized: expected a line break at offset ${at}`);
      at += 1;
    }
  }
  return out;
}
