import type { CollaborativeEvidence, UserContext } from '../../domain/evidence.ts';
import { fmt, render, sanitiseTitle } from '../../cst/index.ts';
import type { PromptSpec } from './spec.ts';

/**
 * Renders a case for STAR as segments (see `schemas/prompt-template.json`): the candidate line, its CST
 * sentences (as the evidence stage rendered them, never recomputed), the user line and the history lines.
 * Segments are rendered once per user and once per candidate; `planTruncation` decides which of them fit the
 * token budget and `joinSegments` lays out the text. The Python trainer mirrors every function here.
 */

export interface UserSegments {
  readonly user: string;
  /** Most recent first. */
  readonly history: readonly string[];
}

export interface CandidateSegments {
  readonly candidate: string;
  /** Strongest first, as CST orders them. */
  readonly evidence: readonly string[];
}

/** How many of each kind of segment survive truncation. */
export interface TruncationPlan {
  readonly evidence: number;
  readonly user: boolean;
  readonly history: number;
  /** Token ids to keep of the joined text when dropping whole segments was not enough; null = all. */
  readonly cutAt: number | null;
}

/** Token counts of the segments of one candidate and its user, in segment order. */
export interface SegmentLengths {
  readonly candidate: number;
  readonly evidence: readonly number[];
  readonly user: number;
  readonly history: readonly number[];
}

// eslint-disable-next-line no-control-regex
const UNSAFE_TEXT = /[\u0000-\u001f\u007f<>[\]]/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** A lone UTF-16 surrogate (a title cut inside a pair) becomes U+FFFD, so every segment is valid Unicode. */
export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD');
}

/**
 * Sentences come from CST, whose values are already sanitised; they are still cleaned of control characters,
 * of `<>` and of `[]`, so that no text can forge a segment marker or a special token (`[SEP]`, `[CLS]`).
 */
export function cleanSentence(sentence: string): string {
  return sentence.replace(UNSAFE_TEXT, ' ').replace(/\s+/g, ' ').trim();
}

export function renderUserSegments(spec: PromptSpec, user: UserContext): UserSegments {
  const mix = user.categoryMix
    .slice(0, spec.limits.maxMixCategories)
    .map((m) => `${sanitiseTitle(m.category, '?')} ${fmt.percent(m.share)}`)
    .join(', ');
  const interactions = fmt.int(user.interactionCount);
  const line = mix.length > 0 ? render(spec.segments.user, { interactions, mix }) : render(spec.segments.userNoMix, { interactions });
  const history = user.recentItems
    .slice(0, spec.limits.maxHistoryItems)
    .map((r) => wellFormed(render(spec.segments.history, { title: sanitiseTitle(r.title, r.itemId) })));
  return { user: wellFormed(line), history };
}

export function renderCandidateSegments(spec: PromptSpec, candidate: CollaborativeEvidence): CandidateSegments {
  const title = sanitiseTitle(candidate.title, candidate.itemId);
  const categories = candidate.categories
    .slice(0, spec.limits.maxCategories)
    .map((c) => sanitiseTitle(c, '?'))
    .join(', ');
  const line =
    categories.length > 0 ? render(spec.segments.candidate, { title, categories }) : render(spec.segments.candidateNoCategories, { title });
  const evidence = candidate.sentences
    .slice(0, spec.limits.maxSentences)
    .map(cleanSentence)
    .filter((s) => s.length > 0)
    .map((sentence) => wellFormed(render(spec.segments.evidence, { sentence })));
  return { candidate: wellFormed(line), evidence };
}

/**
 * Which segments fit `budget` tokens (maxLength less the special tokens), by the spec's truncation steps.
 * Deterministic and cheap: it only adds up the segments' token counts.
 */
export function planTruncation(spec: PromptSpec, lengths: SegmentLengths, budget: number): TruncationPlan {
  let evidence = lengths.evidence.length;
  let history = lengths.history.length;
  let user = true;
  let total = lengths.candidate + sum(lengths.evidence) + lengths.user + sum(lengths.history);
  for (const step of spec.truncation.steps) {
    if (total <= budget) break;
    if (step.drop === 'history') {
      while (total > budget && history > step.keep) total -= lengths.history[--history]!;
    } else if (step.drop === 'evidence') {
      while (total > budget && evidence > step.keep) total -= lengths.evidence[--evidence]!;
    } else if (user && step.keep === 0) {
      user = false;
      total -= lengths.user;
    }
  }
  return { evidence, user, history, cutAt: total > budget ? budget : null };
}

/** The text of the kept segments: candidate, evidence…, user, history…, joined by the spec's separator. */
export function joinSegments(spec: PromptSpec, c: CandidateSegments, u: UserSegments, plan: TruncationPlan): string {
  const parts = [c.candidate, ...c.evidence.slice(0, plan.evidence)];
  if (plan.user) parts.push(u.user);
  parts.push(...u.history.slice(0, plan.history));
  return parts.join(spec.separator);
}

function sum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}
