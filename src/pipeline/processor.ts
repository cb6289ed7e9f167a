import type { DeadLetter, Interaction, Recommendation } from '../domain/events.ts';
import type { CollaborativeEvidence } from '../domain/evidence.ts';
import type { LogRecord } from '../eventlog/port.ts';
import type { VectorStore } from '../store/port.ts';
import type { Scorer } from '../star/port.ts';
import { generateCandidates, type CandidateOptions, type CandidateSet } from '../stages/candidates/index.ts';
import { NegativeSampler, type CollaborativeLearner } from '../stages/embeddings/index.ts';
import { collectEvidence, renderSentences, type CaseEvidence, type EvidenceOptions } from '../stages/evidence/index.ts';
import type { CstTemplates } from '../stages/evidence/templates.ts';
import { ingest, type InteractionDecoder } from '../stages/ingest/index.ts';
import { buildRecommendation, type UserRateLimiter } from '../stages/publish/index.ts';
import { rankCase, type RankedCandidate } from '../stages/ranking/index.ts';
import { StoreView, type ItemMerger } from '../stages/state/store-view.ts';
import type { PipelineInstruments, Stage } from './instruments.ts';

/**
 * Runs one batch of log records through every stage: ingest → learn → candidates → evidence → ranking →
 * publish. Events are handled one at a time in log order, each learned and then ranked before the next is
 * learned, so no recommendation sees an event that came after it (its user's or anyone's). Store round trips
 * stay per batch: the batch's profiles are prefetched into the view, and writes go back in one commit.
 * The caller (the runner) sends the outputs and commits offsets after they are acknowledged.
 */

export interface ProcessorOptions {
  readonly rankingEnabled: boolean;
  readonly topK: number;
  readonly negatives: number;
  readonly candidates: CandidateOptions;
  readonly evidence: EvidenceOptions;
  readonly maxEventAgeMs: number;
  readonly maxFutureSkewMs: number;
}

export interface ProcessorDeps {
  readonly store: VectorStore;
  readonly mergeItem: ItemMerger;
  readonly decode: InteractionDecoder;
  readonly learner: CollaborativeLearner;
  readonly negatives: NegativeSampler;
  readonly scorer: () => Scorer;
  readonly templates: CstTemplates;
  readonly rateLimiter: UserRateLimiter;
  readonly instruments: PipelineInstruments;
  readonly clock?: () => number;
}

/** One ranked event, for observers such as the streaming evaluation and the teacher's case sampler. */
export interface RankedEvent {
  readonly event: Interaction;
  readonly ranked: readonly RankedCandidate[];
  /** Every candidate with its evidence, in candidate order (before scoring). */
  readonly candidates: readonly CollaborativeEvidence[];
  readonly modelVersion: string;
}

export interface BatchOutput {
  readonly recommendations: Recommendation[];
  readonly deadLetters: DeadLetter[];
  readonly accepted: number;
}

export class BatchProcessor {
  private readonly clock: () => number;
  /** Called for every ranked event, published or not; the evaluation and the sampler listen here. */
  onRanked: ((ranked: RankedEvent) => void) | null = null;
  /** false = learn only (benchmarks, warm-up replays); starts as `options.rankingEnabled`. */
  rankingEnabled: boolean;

  constructor(
    private readonly deps: ProcessorDeps,
    private readonly options: ProcessorOptions,
  ) {
    this.clock = deps.clock ?? Date.now;
    this.rankingEnabled = options.rankingEnabled;
  }

  async process(records: readonly LogRecord[]): Promise<BatchOutput> {
    const receivedAt = this.clock();
    const { interactions, deadLetters } = await this.timedAsync('ingest', () =>
      ingest(records, this.deps.decode, {
        nowMs: receivedAt,
        maxEventAgeMs: this.options.maxEventAgeMs,
        maxFutureSkewMs: this.options.maxFutureSkewMs,
      }),
    );
    for (const letter of deadLetters) this.deps.instruments.deadLettered(letter.code);
    const view = new StoreView(this.deps.store, this.deps.mergeItem);
    const negatives = await this.prefetch(view, interactions);
    const recommendations: Recommendation[] = [];
    for (const event of interactions) {
      const rec = await this.handle(view, event, negatives.get(event)!, receivedAt);
      if (rec) recommendations.push(rec);
    }
    const commitStart = this.clock();
    await view.commit();
    this.deps.instruments.stageDuration('commit', (this.clock() - commitStart) / 1000);
    this.deps.instruments.interactionsAccepted(interactions.length);
    return { recommendations, deadLetters, accepted: interactions.length };
  }

  /** Loads every profile the batch will learn from, in two round trips, and draws the negatives. */
  private async prefetch(view: StoreView, events: readonly Interaction[]): Promise<Map<Interaction, string[]>> {
    const negatives = new Map<Interaction, string[]>();
    for (const e of events) {
      negatives.set(e, this.deps.negatives.sample(this.options.negatives, e.itemId));
      this.deps.negatives.observe(e.itemId);
    }
    const userIds = events.map((e) => e.userId);
    await view.load(userIds, []);
    const itemIds = new Set<string>();
    const seeds = this.options.candidates.recentItemsForCooccurrence;
    for (const e of events) {
      const user = view.user(e.userId);
      for (const id of this.deps.learner.itemsToLoad(user, e, negatives.get(e)!)) itemIds.add(id);
      for (const r of user?.recentItems.slice(0, seeds) ?? []) itemIds.add(r.id);
    }
    await view.load([], itemIds);
    return negatives;
  }

  private async handle(view: StoreView, event: Interaction, negatives: string[], receivedAt: number): Promise<Recommendation | null> {
    const user = this.timed('learn', () => this.deps.learner.learn(view, event, negatives));
    if (!this.rankingEnabled) return null;
    if (!this.deps.rateLimiter.allow(event.userId, event.timestampMs)) {
      this.deps.instruments.rateLimited();
      return null;
    }
    const o = this.options;
    const scorer = this.deps.scorer();
    // Sentences cost more than the features; render them for every candidate only when the scorer reads them.
    const templates = scorer.readsSentences ? this.deps.templates : null;
    const candidates = await this.timedAsync('candidates', () => generateCandidates(view, user, o.candidates, event.timestampMs));
    const evidence = await this.timedAsync('evidence', () =>
      collectEvidence(view, { user, candidates, nowMs: event.timestampMs }, o.evidence, templates),
    );
    const top = await this.timedAsync('ranking', () =>
      rankCase(scorer, { eventId: event.eventId, atMs: event.timestampMs, user: evidence.user, candidates: evidence.candidates }, o.topK),
    );
    const ranked = templates ? top : this.timed('evidence', () => explainTop(top, evidence, this.deps.templates, candidates, o.evidence));
    this.onRanked?.({ event, ranked, candidates: evidence.candidates, modelVersion: scorer.modelVersion });
    const now = this.clock();
    const rec = buildRecommendation(event, ranked, scorer.modelVersion, receivedAt, now);
    this.deps.instruments.recommendationPublished(rec.pipelineLatencyMs / 1000);
    return rec;
  }

  private timed<T>(stage: Stage, fn: () => T): T {
    const start = performance.now();
    try {
      return fn();
    } finally {
      this.deps.instruments.stageDuration(stage, (performance.now() - start) / 1000);
    }
  }

  private async timedAsync<T>(stage: Stage, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.deps.instruments.stageDuration(stage, (performance.now() - start) / 1000);
    }
  }
}

function explainTop(
  top: readonly RankedCandidate[],
  evidence: CaseEvidence,
  templates: CstTemplates,
  candidates: CandidateSet,
  options: EvidenceOptions,
): RankedCandidate[] {
  const explained = renderSentences(top.map((t) => t.evidence), evidence, templates, candidates, options);
  return top.map((t, i) => ({ score: t.score, evidence: explained[i]! }));
}
