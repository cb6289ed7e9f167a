import type { Registry } from 'prom-client';
import type { TeacherInstruments } from '../teacher/instruments.ts';
import { createMetrics, type GroupMetrics } from './catalog.ts';

/**
 * Maps the teacher's hooks (`teacher/instruments.ts`) onto the catalog's `teacher` group, on a registry the
 * composition root injects. Case latency, per-agent latency, turns, tool calls, tokens, failures by code.
 */
export interface TeacherMetrics extends TeacherInstruments {
  readonly registry: Registry;
  /** The raw catalog metrics, for the parts of the teacher process no hook covers (pairing, export). */
  readonly catalog: GroupMetrics<'teacher'>;
}

export function createTeacherMetrics(registry: Registry, options: { processMetrics?: boolean } = {}): TeacherMetrics {
  const m = createMetrics(registry, 'teacher', options);
  return {
    registry,
    catalog: m,
    caseReceived: () => m.teacherCasesReceived.inc(),
    caseFinished: (status, seconds) => {
      m.teacherTrajectories.inc({ status });
      m.teacherCaseDuration.observe(seconds);
    },
    agentDuration: (agent, seconds) => m.teacherAgentDuration.observe({ agent }, seconds),
    llmCall: (agent, outcome, seconds, promptTokens, completionTokens) => {
      m.teacherTurns.inc({ agent, outcome });
      m.teacherLlmDuration.observe({ agent }, seconds);
      if (promptTokens) m.teacherLlmTokens.inc({ agent, kind: 'prompt' }, promptTokens);
      if (completionTokens) m.teacherLlmTokens.inc({ agent, kind: 'completion' }, completionTokens);
    },
    toolCall: (tool, outcome) => m.teacherToolCalls.inc({ tool, outcome }),
    failure: (code) => m.teacherFailures.inc({ code }),
    backlog: (cases) => m.teacherBacklog.set(cases),
    deadLettered: (code) => m.teacherDeadLetters.inc({ code }),
  };
}
