import { caseText, dataBlock, reflectorSystem } from './prompts.ts';
import { inCanonicalOrder, type Analyst } from './roles.ts';
import { reflectorSchema, type ReflectorAnswer } from './schemas.ts';
import { ask, type RunContext } from './session.ts';

export interface SendBack {
  readonly analyst: Analyst;
  readonly request: string;
}

/**
 * The reflector reads every finding and may send analysts back. `final` (the rounds are spent) makes the
 * schema allow no send-backs; requests naming the same analyst are merged.
 */
export async function runReflector(rc: RunContext, findings: ReadonlyMap<Analyst, string>, final: boolean): Promise<SendBack[]> {
  const blocks = [...findings].map(([analyst, text]) => `Finding of the ${analyst} analyst:\n${dataBlock(`finding:${analyst}`, text)}`);
  const messages = [
    { role: 'system' as const, content: reflectorSystem() },
    {
      role: 'user' as const,
      content: [
        `The case:\n${dataBlock('case', caseText(rc.teacherCase, { historyItems: 10, evidence: true }))}`,
        ...blocks,
        final ? 'This is the last review: you cannot send anyone back.' : 'Review the findings.',
      ].join('\n'),
    },
  ];
  const { value } = await ask<ReflectorAnswer>(rc, 'reflector', messages, reflectorSchema(final), 'mars_reflection');
  const merged = new Map<Analyst, string>();
  for (const s of value.sendBack) merged.set(s.analyst, merged.has(s.analyst) ? `${merged.get(s.analyst)!} ${s.request}` : s.request);
  const sendBack = inCanonicalOrder([...merged].map(([analyst, request]) => ({ analyst, request })));
  const text = [value.assessment, ...value.issues.map((i) => `- ${i}`), ...sendBack.map((s) => `${s.analyst}: ${s.request}`)].join('\n');
  rc.recorder.step({ kind: 'reflection', agent: 'reflector', text, sendBack: sendBack.map((s) => s.analyst) });
  return sendBack;
}
