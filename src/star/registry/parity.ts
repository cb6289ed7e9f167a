import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseSentence, type CstTemplates } from '../../cst/index.ts';
import type { ScoringCase } from '../../domain/evidence.ts';
import type { OnnxStarScorer } from '../onnx/scorer.ts';
import { scoringCaseSchema } from '../prompt/case-schema.ts';
import { StarModelError } from './errors.ts';

/**
 * The parity check a model must pass before it serves: the trainer wrote cases with the texts, token ids and
 * onnxruntime scores it computed (`parity.jsonl`); the server renders, tokenizes and scores the same cases and
 * must agree exactly on texts and ids and within `tolerance` on every score. This catches a model trained on
 * a drifted template, a tokenizer that reads differently here, and a corrupted or mismatched `star.onnx`.
 */

const parityLineSchema = z.object({
  case: scoringCaseSchema,
  texts: z.array(z.string()),
  ids: z.array(z.array(z.number().int())),
  scores: z.array(z.number()),
});

export interface ParityCase {
  readonly case: ScoringCase;
  readonly texts: readonly string[];
  readonly ids: readonly (readonly number[])[];
  readonly scores: readonly number[];
}

export interface ParityReport {
  readonly cases: number;
  readonly candidates: number;
  readonly maxAbsDiff: number;
}

export function readParity(path: string): ParityCase[] {
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new StarModelError('MODEL_INVALID', `${path} has no parity cases`);
  return lines.map((line, i) => {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (cause) {
      throw new StarModelError('MODEL_INVALID', `${path}:${i + 1}: not JSON`, { cause });
    }
    const parsed = parityLineSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new StarModelError('MODEL_INVALID', `${path}:${i + 1}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
    }
    const p = parsed.data;
    const n = p.case.candidates.length;
    if (p.texts.length !== n || p.ids.length !== n || p.scores.length !== n) {
      throw new StarModelError('MODEL_INVALID', `${path}:${i + 1}: texts, ids and scores must have one entry per candidate (${n})`);
    }
    return { case: p.case as ScoringCase, texts: p.texts, ids: p.ids, scores: p.scores };
  });
}

/**
 * Refuses a model whose parity cases hold a CST sentence that none of the server's templates renders. The
 * manifest's `cstTemplateVersion` is only a label; the sentences in `parity.jsonl` are what the trainer
 * actually fed the model, so a model of older templates whose label was edited by hand is refused here too.
 * Throws `StarModelError` `MODEL_TEMPLATE_MISMATCH` naming the first such sentence.
 */
export function checkParitySentences(parity: readonly ParityCase[], templates: CstTemplates, version: string): void {
  parity.forEach((p, i) => {
    p.case.candidates.forEach((candidate, j) => {
      for (const sentence of candidate.sentences) {
        if (parseSentence(sentence, templates)) continue;
        throw new StarModelError(
          'MODEL_TEMPLATE_MISMATCH',
          `model ${version}: parity case ${i + 1} candidate ${j + 1} holds a sentence that no CST ${templates.version} template renders ` +
            `(${JSON.stringify(sentence.slice(0, 80))}): it was trained on other templates`,
        );
      }
    });
  });
}

/** Throws `StarModelError` `MODEL_PARITY_MISMATCH` naming the first disagreement. */
export async function checkParity(scorer: OnnxStarScorer, parity: readonly ParityCase[], tolerance: number): Promise<ParityReport> {
  const version = scorer.modelVersion;
  parity.forEach((p, i) => {
    p.case.candidates.forEach((candidate, j) => {
      const rendered = scorer.encoder.render(p.case.user, candidate);
      if (rendered.text !== p.texts[j]) {
        throw new StarModelError(
          'MODEL_PARITY_MISMATCH',
          `model ${version}: parity case ${i + 1} candidate ${j + 1}: rendered text differs from the trainer's ` +
            `(server ${JSON.stringify(rendered.text.slice(0, 80))}…, trainer ${JSON.stringify(p.texts[j]!.slice(0, 80))}…)`,
        );
      }
      if (!sameIds(rendered.ids, p.ids[j]!)) {
        throw new StarModelError('MODEL_PARITY_MISMATCH', `model ${version}: parity case ${i + 1} candidate ${j + 1}: token ids differ from the trainer's`);
      }
    });
  });
  const scores = await scorer.scoreNow(parity.map((p) => p.case));
  let maxAbsDiff = 0;
  let candidates = 0;
  for (let i = 0; i < parity.length; i++) {
    const expected = parity[i]!.scores;
    const got = scores[i]!;
    for (let j = 0; j < expected.length; j++) {
      candidates++;
      const diff = Math.abs(got[j]! - expected[j]!);
      if (!(diff <= tolerance)) {
        throw new StarModelError(
          'MODEL_PARITY_MISMATCH',
          `model ${version}: parity case ${i + 1} candidate ${j + 1}: score ${got[j]} vs trainer ${expected[j]} (|diff| ${diff} > tolerance ${tolerance})`,
        );
      }
      maxAbsDiff = Math.max(maxAbsDiff, diff);
    }
  }
  return { cases: parity.length, candidates, maxAbsDiff };
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
