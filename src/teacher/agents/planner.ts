import { caseText, dataBlock, plannerSystem } from './prompts.ts';
import { inCanonicalOrder, type Analyst } from './roles.ts';
import { plannerSchema, type PlannerAnswer } from './schemas.ts';
import { ask, type RunContext } from './session.ts';

export interface AnalystTask {
  readonly analyst: Analyst;
  readonly focus: string;
}

/**
 * The planner: one answer with a plan and the analysts to brief. Tasks naming the same analyst are merged;
 * the analysts then run in the canonical order whatever order the planner used.
 */
export async function runPlanner(rc: RunContext): Promise<AnalystTask[]> {
  const messages = [
    { role: 'system' as const, content: plannerSystem() },
    { role: 'user' as const, content: `The case:\n${dataBlock('case', caseText(rc.teacherCase, { historyItems: 10, evidence: false }))}\nWrite the plan.` },
  ];
  const { value } = await ask<PlannerAnswer>(rc, 'planner', messages, plannerSchema, 'mars_plan');
  const merged = new Map<Analyst, string>();
  for (const t of value.tasks) merged.set(t.analyst, merged.has(t.analyst) ? `${merged.get(t.analyst)!} ${t.focus}` : t.focus);
  const tasks = inCanonicalOrder([...merged].map(([analyst, focus]) => ({ analyst, focus })));
  rc.recorder.step({ kind: 'plan', agent: 'planner', text: value.plan, tasks: tasks.map((t) => `${t.analyst}: ${t.focus}`) });
  return tasks;
}
