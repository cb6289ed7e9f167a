import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { StarModelError } from './errors.ts';

/**
 * The STAR model directory contract, written by `train/` and read here:
 *
 * | file | what |
 * |---|---|
 * | `star.onnx` | the scorer; inputs int64 `[batch, length]` ids and mask, float32 `[batch, features]`; output float32 `[batch]` |
 * | `tokenizer.json` | the tokenizer, `tokenizers` JSON format |
 * | `star.json` | this manifest |
 * | `parity.jsonl` | cases with the texts, ids and scores the trainer computed with onnxruntime |
 */

export const MODEL_FILES = { onnx: 'star.onnx', tokenizer: 'tokenizer.json', manifest: 'star.json', parity: 'parity.jsonl' } as const;

/** How to turn the model's output into "higher is better". */
export const SCORE_READINGS = ['logit', 'probability', 'negated'] as const;
export type ScoreReading = (typeof SCORE_READINGS)[number];

export const manifestSchema = z.object({
  name: z.string().min(1).describe('Model family, e.g. `star`'),
  version: z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, dash, underscore').describe('Published with every recommendation'),
  promptTemplateVersion: z.string().min(1).describe('`version` of schemas/prompt-template.json it was trained on'),
  cstTemplateVersion: z.string().min(1).describe('`version` of schemas/cst-templates.json it was trained on'),
  inputNames: z
    .object({
      ids: z.string().min(1),
      mask: z.string().min(1),
      features: z.string().min(1).optional().describe('Absent for text-only models'),
    })
    .describe('ONNX input names by role'),
  outputName: z.string().min(1),
  maxLength: z.number().int().min(3).max(8192).describe('Tokens per candidate, [CLS] and [SEP] included'),
  featureWidth: z.number().int().nonnegative().describe('Columns of the features input; 0 without one'),
  scoreReading: z.enum(SCORE_READINGS).describe('logit/probability: higher is better; negated: lower is better'),
  parityMaxAbsDiff: z.number().nonnegative().optional().describe('PyTorch vs onnxruntime score difference the trainer measured (information)'),
  trainedAt: z.string().optional(),
  metrics: z.record(z.string(), z.number()).optional(),
  config: z.record(z.string(), z.unknown()).optional(),
});

export type StarManifest = z.infer<typeof manifestSchema>;

export interface ModelFiles {
  readonly dir: string;
  readonly onnx: string;
  readonly tokenizer: string;
  readonly manifest: string;
  readonly parity: string;
}

export function modelFiles(dir: string): ModelFiles {
  return {
    dir,
    onnx: join(dir, MODEL_FILES.onnx),
    tokenizer: join(dir, MODEL_FILES.tokenizer),
    manifest: join(dir, MODEL_FILES.manifest),
    parity: join(dir, MODEL_FILES.parity),
  };
}

/** Checks that every file is there and reads the manifest. Throws `StarModelError` `MODEL_INVALID`. */
export function readManifest(dir: string): StarManifest {
  const files = modelFiles(dir);
  for (const [role, path] of Object.entries(files)) {
    if (role === 'dir') continue;
    if (!existsSync(path) || !statSync(path).isFile()) {
      throw new StarModelError('MODEL_INVALID', `model directory ${dir} lacks ${path.slice(dir.length + 1)}`);
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(files.manifest, 'utf8'));
  } catch (cause) {
    throw new StarModelError('MODEL_INVALID', `${files.manifest} is not JSON: ${(cause as Error).message}`, { cause });
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StarModelError('MODEL_INVALID', `${files.manifest}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/** Refuses a model trained on other templates than the server renders with. */
export function checkTemplates(manifest: StarManifest, promptVersion: string, cstVersion: string, featureWidth: number): void {
  if (manifest.promptTemplateVersion !== promptVersion) {
    throw new StarModelError(
      'MODEL_TEMPLATE_MISMATCH',
      `model ${manifest.version} was trained on prompt template ${manifest.promptTemplateVersion}, the server renders ${promptVersion}`,
    );
  }
  if (manifest.cstTemplateVersion !== cstVersion) {
    throw new StarModelError(
      'MODEL_TEMPLATE_MISMATCH',
      `model ${manifest.version} was trained on CST templates ${manifest.cstTemplateVersion}, the server renders ${cstVersion}`,
    );
  }
  const expected = manifest.inputNames.features ? featureWidth : 0;
  if (manifest.featureWidth !== expected) {
    throw new StarModelError(
      'MODEL_TEMPLATE_MISMATCH',
      `model ${manifest.version} takes ${manifest.featureWidth} feature columns, prompt template ${promptVersion} has ${expected}`,
    );
  }
}
