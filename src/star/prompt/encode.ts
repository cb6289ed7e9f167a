import type { CollaborativeEvidence, ScoringCase, UserContext } from '../../domain/evidence.ts';
import { featureWidth, writeFeatures } from './features.ts';
import {
  joinSegments,
  planTruncation,
  renderCandidateSegments,
  renderUserSegments,
  type CandidateSegments,
  type TruncationPlan,
  type UserSegments,
} from './render.ts';
import type { PromptSpec } from './spec.ts';

/**
 * Turns scoring cases into model inputs: one row per candidate, `[CLS] kept segments [SEP]` as token ids
 * (padded to the longest row of the batch), an attention mask and the feature rows. The ids are the
 * concatenation of each kept segment's ids, which equals tokenizing the joined text because segments meet
 * at whitespace (the shared test vectors check exactly that).
 */

/** What the encoder needs of a tokenizer; `StarTokenizer` is the real one. */
export interface SegmentTokenizer {
  ids(text: string): readonly number[];
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
}

export interface EncodedBatch {
  /** `rows × length` int64 token ids. */
  readonly ids: BigInt64Array;
  /** `rows × length` int64, 1 for tokens and 0 for padding. */
  readonly mask: BigInt64Array;
  /** `rows × width` float32 feature rows. */
  readonly features: Float32Array;
  readonly rows: number;
  readonly length: number;
  readonly width: number;
}

/** One rendered candidate: the model's text and its ids with special tokens (what parity files record). */
export interface RenderedCandidate {
  readonly text: string;
  readonly ids: readonly number[];
  readonly plan: TruncationPlan;
}

export class CaseEncoder {
  readonly width: number;

  constructor(
    readonly spec: PromptSpec,
    private readonly tokenizer: SegmentTokenizer,
    readonly maxLength: number,
  ) {
    if (maxLength < 3) throw new RangeError(`maxLength must leave room for text between [CLS] and [SEP], got ${maxLength}`);
    this.width = featureWidth(spec);
  }

  /** Token ids (with [CLS] and [SEP]) of every candidate of every case, in order. */
  rows(cases: readonly ScoringCase[]): number[][] {
    const rows: number[][] = [];
    for (const c of cases) {
      const user = this.userPart(c.user);
      for (const candidate of c.candidates) rows.push(this.candidateRow(user, candidate).ids);
    }
    return rows;
  }

  encode(cases: readonly ScoringCase[]): EncodedBatch {
    const rows = this.rows(cases);
    let length = 0;
    for (const r of rows) if (r.length > length) length = r.length;
    const ids = new BigInt64Array(rows.length * length);
    const mask = new BigInt64Array(rows.length * length);
    if (this.tokenizer.padId !== 0) ids.fill(BigInt(this.tokenizer.padId));
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const base = i * length;
      for (let j = 0; j < row.length; j++) {
        ids[base + j] = BigInt(row[j]!);
        mask[base + j] = 1n;
      }
    }
    const features = new Float32Array(rows.length * this.width);
    let r = 0;
    for (const c of cases) for (const candidate of c.candidates) writeFeatures(this.spec, c.user, candidate, features, this.width * r++);
    return { ids, mask, features, rows: rows.length, length, width: this.width };
  }

  /** Text and ids of one candidate, as the trainer renders it. */
  render(user: UserContext, candidate: CollaborativeEvidence): RenderedCandidate {
    const u = this.userPart(user);
    const { ids, plan, segments } = this.candidateRow(u, candidate);
    return { text: joinSegments(this.spec, segments, u.segments, plan), ids, plan };
  }

  /** Feature row of one candidate (tests and parity tools). */
  features(user: UserContext, candidate: CollaborativeEvidence): Float32Array {
    const out = new Float32Array(this.width);
    writeFeatures(this.spec, user, candidate, out, 0);
    return out;
  }

  private userPart(user: UserContext): UserPart {
    const segments = renderUserSegments(this.spec, user);
    return { segments, userIds: this.tokenizer.ids(segments.user), historyIds: segments.history.map((h) => this.tokenizer.ids(h)) };
  }

  private candidateRow(u: UserPart, candidate: CollaborativeEvidence): { ids: number[]; plan: TruncationPlan; segments: CandidateSegments } {
    const segments = renderCandidateSegments(this.spec, candidate);
    const candidateIds = this.tokenizer.ids(segments.candidate);
    const evidenceIds = segments.evidence.map((e) => this.tokenizer.ids(e));
    const plan = planTruncation(
      this.spec,
      {
        candidate: candidateIds.length,
        evidence: evidenceIds.map((e) => e.length),
        user: u.userIds.length,
        history: u.historyIds.map((h) => h.length),
      },
      this.maxLength - 2,
    );
    const ids: number[] = [this.tokenizer.clsId, ...candidateIds];
    for (let i = 0; i < plan.evidence; i++) ids.push(...evidenceIds[i]!);
    if (plan.user) ids.push(...u.userIds);
    for (let i = 0; i < plan.history; i++) ids.push(...u.historyIds[i]!);
    if (plan.cutAt !== null) ids.length = 1 + plan.cutAt;
    ids.push(this.tokenizer.sepId);
    return { ids, plan, segments };
  }
}

interface UserPart {
  readonly segments: UserSegments;
  readonly userIds: readonly number[];
  readonly historyIds: readonly (readonly number[])[];
}
