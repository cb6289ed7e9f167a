import type { DeadLetter, Interaction, Recommendation, SourcePosition } from '../domain/events.ts';
import type { CollaborativeEvidence } from '../domain/evidence.ts';
import type { TeacherCase } from '../domain/teacher.ts';
import type { LogRecord } from '../eventlog/port.ts';
import { errorCode } from '../errors/index.ts';
import type { BatchHint, BatchReader, LiveBatch, UserProfile, VectorStore } from '../store/port.ts';
import type { Scorer } from '../star/port.ts';
import { generateCandidates, type CandidateOptions, type CandidateSet } from '../stages/candidates/index.ts';
import { learnEventInto, learnEventOnce, NegativeSampler, type CollaborativeLearner } from '../stages/embeddings/index.ts';
import { collectEvidence, renderSentences, type CaseEvidence, type EvidenceOptions } from '../stages/evidence/index.ts';
import type { CstTemplates } from '../cst/index.ts';
import { ingest, type InteractionDecoder } from '../stages/ingest/index.ts';
import { routeItemDeltas, UnsentDeltas, type ItemDeltaMessage, type LearnedDeltas } from '../stages/item-deltas/index.ts';
import { decodeOutbox, encodeOutbox, outboxEntry } from '../stages/item-deltas/outbox.ts';
import { buildRecommendation, type UserRateLimiter } from '../stages/publish/index.ts';
import { rankCase, type RankedCandidate } from '../stages/ranking/index.ts';
import { headPopularity, toTeacherCase, type CaseSampler } from '../stages/sampling/index.ts';
import { StoreView, type ItemMerger } from '../stages/state/store-view.ts';
import type { PipelineInstruments, Stage } from './instruments.ts';

/**
 * Runs one batch of log records through every stage: ingest → learn → candidates → evidence → ranking →
 * publish, and the teacher's case sampler beside publish. Events are handled one at a time in log order, each
 * learned and then ranked before the next is learned, so no recommendation (and no teacher case) sees an event
 * that came after it (its user's or anyone's). Store round trips stay per batch: the batch's profiles are
 * prefetched into the view, and writes go back in one commit.
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
  /**
   * true (`store.itemWrites = routed`): item deltas are not applied to the store but returned as
   * `itemDeltas`, for the item-deltas topic and its single writer per item (`stages/item-deltas`).
   * @default false
   */
  readonly routeItemDeltas?: boolean;
}

export interface ProcessorDeps {
  readonly store: VectorStore;
  readonly mergeItem: ItemMerger;
  readonly decode: InteractionDecoder;
  readonly learner: CollaborativeLearner;
  readonly negatives: NegativeSampler;
  /** The same sampler over item slots, for stores that open live batches (`VectorStore.openBatch`). */
  readonly negativeSlots: NegativeSampler<number>;
  /** The scorer that serves `userId` now (in an experiment, its arm's: `src/experiments/arms.ts`); taken once per case. */
  readonly scorer: (userId: string) => Scorer;
  readonly templates: CstTemplates;
  readonly rateLimiter: UserRateLimiter;
  readonly instruments: PipelineInstruments;
  /** Picks ranked events as cases for the teacher (the side stream); null = no sampling. */
  readonly sampler?: CaseSampler | null;
  readonly clock?: () => number;
}

/** One ranked event, for observers such as the streaming evaluation and the teacher's case sampler. */
export interface RankedEvent {
  readonly event: Interaction;
  readonly ranked: readonly RankedCandidate[];
  /** Every candidate with its evidence, in candidate order (before scoring). */
  readonly candidates: readonly CollaborativeEvidence[];
  readonly modelVersion: string;
  /** The experiment arm that served the list (`Scorer.arm`); null or unset outside an experiment. */
  readonly arm?: string | null;
  /** The experiment cell the list counts in (`Scorer.cell`), taken when its scorer was routed; null: none. */
  readonly cell?: string | null;
}

export interface BatchOutput {
  readonly recommendations: Recommendation[];
  /** Event time of the interaction behind each recommendation, aligned with `recommendations`. */
  readonly eventTimesMs: number[];
  readonly deadLetters: DeadLetter[];
  /** Routed mode only (else empty): the batch's item deltas, one message per item, sent with the rest. */
  readonly itemDeltas: ItemDeltaMessage[];
  /** Cases the sampler picked, for the teacher-cases topic; sent and acknowledged with the rest. */
  readonly teacherCases: TeacherCase[];
  readonly accepted: number;
  /**
   * Ends the batch's learning (`process(…, { settleLater: true })`): true once its outputs are published, false
   * when they could not be (the learning is undone). Idempotent; already settled unless `settleLater`. Stores
   * read through `StoreView` commit inside `process()`; for them this only tells whether the batch's routed item
   * deltas reached the log (until then a redelivered event sends them again: `UnsentDeltas`).
   */
  readonly settle: (published: boolean) => Promise<void>;
}

/** Events whose routed item deltas are kept until their outputs are published (`UnsentDeltas`): a few batches. */
const UNSENT_DELTAS_EVENTS = 5_000;

/** The longest stretch a live batch runs without letting other work on the event loop in. */
const YIELD_EVERY_MS = 20;

export class BatchProcessor {
  /** Cases the sampler picked since start (a batch handled again after a failure counts again). */
  casesSampled = 0;
  private readonly clock: () => number;
  /** Routed mode: item deltas of learned events whose outputs are not known to be published (`UnsentDeltas`). */
  private readonly unsentDeltas = new UnsentDeltas(UNSENT_DELTAS_EVENTS);
  private readonly negativeSlots: Int32Array;
  /** When the processor last let the event loop in (`yieldIfDue`). */
  private sliceStart = performance.now();
  /** Called for every ranked event, published or not; the evaluation and the sampler listen here. */
  onRanked: ((ranked: RankedEvent) => void) | null = null;
  /**
   * Called for every accepted interaction that ranking would see, before its user's rate limit is checked and
   * before it is ranked (so a listener joins it to the user's previous list first): the experiment's outcome join.
   */
  onInteraction: ((event: Interaction) => void) | null = null;
  /** false = learn only (benchmarks, warm-up replays); starts as `options.rankingEnabled`. */
  rankingEnabled: boolean;

  constructor(
    private readonly deps: ProcessorDeps,
    private readonly options: ProcessorOptions,
  ) {
    this.clock = deps.clock ?? Date.now;
    this.negativeSlots = new Int32Array(options.negatives);
    this.rankingEnabled = options.rankingEnabled;
  }

  /**
   * @param options.settleLater true: the batch's learning stays open after its durable write (`prepare`), and the
   *   caller ends it with `output.settle(true)` once the outputs are published (or `settle(false)` when they were
   *   not: the learning is undone, so the redelivered batch is learned once and ranks the same). Otherwise the
   *   learning is committed before this returns.
   */
  async process(records: readonly LogRecord[], options: { readonly settleLater?: boolean } = {}): Promise<BatchOutput> {
    const receivedAt = this.clock();
    const roundTripsBefore = this.deps.store.roundTrips?.() ?? 0;
    const { interactions, sources, deadLetters } = await this.timedAsync('ingest', () =>
      ingest(records, this.deps.decode, {
        nowMs: receivedAt,
        maxEventAgeMs: this.options.maxEventAgeMs,
        maxFutureSkewMs: this.options.maxFutureSkewMs,
      }),
    );
    for (const letter of deadLetters) this.deps.instruments.deadLettered(letter.code);
    const routed = this.options.routeItemDeltas === true;
    const out: Omit<BatchOutput, 'deadLetters' | 'accepted'> =
      !routed && this.deps.store.openBatch
        ? await this.processLive(await this.deps.store.openBatch(batchHint(interactions)), interactions, sources, receivedAt, options.settleLater === true)
        : await this.processViaView(interactions, sources, receivedAt, routed, options.settleLater === true);
    this.deps.instruments.storeRoundTrips((this.deps.store.roundTrips?.() ?? 0) - roundTripsBefore);
    this.deps.instruments.interactionsAccepted(interactions.length);
    return { ...out, deadLetters, accepted: interactions.length };
  }

  /**
   * The store is the batch view (the embedded store): each event is learned into the live state in place and
   * ranked on it; the batch commits at the end or, when anything fails, rolls back whole, so a redelivered
   * batch is learned from the same state.
   */
  private async processLive(
    batch: LiveBatch,
    interactions: readonly Interaction[],
    sources: readonly SourcePosition[],
    receivedAt: number,
    settleLater: boolean,
  ): Promise<Omit<BatchOutput, 'deadLetters' | 'accepted'>> {
    const results = emptyResults();
    this.deps.negativeSlots.begin();
    try {
      const negatives = this.negativeSlots;
      for (const [i, event] of interactions.entries()) {
        // A batch of ranked events takes long enough to starve probes, /metrics and the API: let them in.
        // The batch stays open meanwhile; the store's writes wait for it, reads see it as of this event.
        await this.yieldIfDue();
        const learnStart = performance.now();
        // A store written per batch knows what its durable states hold (`LiveBatch.learned`): the changes of an
        // event learned and made durable before a crash kept its offset from committing are dropped by the
        // batch's state, so it is learned once. It is still ranked and published (at-least-once: its earlier
        // answer may never have been sent), on the state as it is; see README, "What each mode guarantees".
        if (batch.learned?.(sources[i]!, event.userId) === true) this.deps.instruments.learningSkipped();
        learnEventInto(this.deps.learner, this.deps.negativeSlots, batch.state, event, negatives);
        this.deps.instruments.stageDuration('learn', (performance.now() - learnStart) / 1000);
        if (!this.rankingEnabled) continue;
        const rec = await this.rank(batch, event, batch.user(event.userId)!, receivedAt, results.teacherCases);
        if (rec) {
          results.recommendations.push(rec);
          results.eventTimesMs.push(event.timestampMs);
        }
      }
    } catch (err) {
      batch.rollback();
      this.deps.negativeSlots.rollback();
      throw err;
    }
    // The commit, the outputs' encoding and the next batch's decoding follow without a turn of their own.
    await this.yieldIfDue();
    // A store with a durable tier (Qdrant: `store/tiered`) writes it here, inside process(): before the runner
    // sends this batch's outputs and commits its offsets. A failed write has rolled the batch back.
    try {
      await this.timedAsync('commit', () => batch.prepare());
    } catch (err) {
      this.deps.negativeSlots.rollback();
      throw err;
    }
    let settled = false;
    const settle = async (published: boolean): Promise<void> => {
      if (settled) return;
      settled = true;
      if (published) {
        await batch.commit();
        this.deps.negativeSlots.commit();
      } else {
        batch.rollback();
        this.deps.negativeSlots.rollback();
      }
    };
    if (!settleLater) await settle(true);
    return { ...results, settle };
  }

  /** Any other store: profiles are read into a `StoreView`, changed there, and written back in one commit. */
  private async processViaView(
    interactions: readonly Interaction[],
    sources: readonly SourcePosition[],
    receivedAt: number,
    routed: boolean,
    settleLater: boolean,
  ): Promise<Omit<BatchOutput, 'deadLetters' | 'accepted'>> {
    const view = new StoreView(this.deps.store, this.deps.mergeItem, { applyItemDeltas: !routed });
    const negatives = await this.prefetch(view, interactions);
    // Routed: per event, the item deltas it sends (null: none, or not known yet: `owed`).
    const sends: (LearnedDeltas | null)[] = [];
    const owed: number[] = [];
    const learnedUsers = new Set<string>();
    const results = emptyResults();
    for (const [i, event] of interactions.entries()) {
      const deltasBefore = view.itemDeltaCount;
      // An event its user's stored state already holds (`UserProfile.learned`) is not learned again and makes
      // no item deltas again (routed: it sends the ones it made the first time, in case they never reached the
      // log); it is still ranked and answered, as on the live path.
      const source = sources[i]!;
      const learnedUser = this.timed('learn', () => learnEventOnce(this.deps.learner, view, event, negatives.get(event)!, source));
      sends.push(null);
      if (!learnedUser) {
        this.deps.instruments.learningSkipped();
        if (routed) {
          const again = this.unsentDeltas.get(source);
          if (again) sends[i] = again;
          else owed.push(i);
        }
      } else if (routed) {
        sends[i] = { source, deltas: view.itemDeltasSince(deltasBefore) };
        learnedUsers.add(event.userId);
      }
      const user = learnedUser ?? view.user(event.userId)!;
      const rec = this.rankingEnabled ? await this.rank(view, event, user, receivedAt, results.teacherCases) : null;
      if (rec) {
        results.recommendations.push(rec);
        results.eventTimesMs.push(event.timestampMs);
      }
    }
    if (owed.length > 0) await this.recoverSends(interactions, sources, owed, sends);
    const learned = sends.filter((s): s is LearnedDeltas => s !== null);
    if (routed && this.deps.store.readOutboxes) keepOutboxes(view, interactions, sends, learnedUsers);
    // The store's durable write (Qdrant: write-through, `store/tiered`) completes here, inside process(): before
    // the runner sends this batch's outputs and commits its offsets.
    await this.timedAsync('commit', () => view.commit());
    this.unsentDeltas.add(learned);
    let settled = false;
    const settle = async (published: boolean): Promise<void> => {
      if (settled) return;
      settled = true;
      if (published) this.unsentDeltas.published(learned);
    };
    if (!settleLater) await settle(true);
    return { ...results, itemDeltas: routed ? routeItemDeltas(learned) : [], settle };
  }

  /**
   * Routed: the deltas of held events this process has no memory of (a new process, after a crash between the
   * users' write and the send), from their users' outboxes, one read for the batch. An event its user's outbox
   * does not hold was published with a later write of that user: nothing is owed.
   */
  private async recoverSends(
    interactions: readonly Interaction[],
    sources: readonly SourcePosition[],
    owed: readonly number[],
    sends: (LearnedDeltas | null)[],
  ): Promise<void> {
    const store = this.deps.store;
    if (!store.readOutboxes) return;
    const outboxes = await this.timedAsync('commit', () => store.readOutboxes!([...new Set(owed.map((i) => interactions[i]!.userId))]));
    const decoded = new Map<string, LearnedDeltas[]>();
    for (const i of owed) {
      const userId = interactions[i]!.userId;
      const text = outboxes.get(userId);
      if (text === undefined) continue;
      if (!decoded.has(userId)) decoded.set(userId, this.decodeOutboxOrEmpty(text));
      const entry = outboxEntry(decoded.get(userId)!, sources[i]!);
      if (entry) {
        sends[i] = entry;
        this.deps.instruments.itemDeltasResent();
      }
    }
  }

  /** An outbox this version cannot read counts as a failed stage and as empty: it must not stop the partition. */
  private decodeOutboxOrEmpty(text: string): LearnedDeltas[] {
    try {
      return decodeOutbox(text);
    } catch (err) {
      this.deps.instruments.stageFailed('commit', errorCode(err));
      return [];
    }
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

  /** Ranks one event just learned, for `user` as of now; null when the user's rate limit holds it back. */
  private async rank(
    view: BatchReader,
    event: Interaction,
    user: UserProfile,
    receivedAt: number,
    teacherCases: TeacherCase[],
  ): Promise<Recommendation | null> {
    this.onInteraction?.(event);
    if (!this.deps.rateLimiter.allow(event.userId, event.timestampMs, event.eventId)) {
      this.deps.instruments.rateLimited();
      return null;
    }
    const o = this.options;
    const scorer = this.deps.scorer(event.userId);
    const arm = scorer.arm ?? null;
    // Sentences cost more than the features; render them for every candidate only when the scorer reads them.
    const templates = scorer.readsSentences ? this.deps.templates : null;
    const candidates = await this.timedAsync('candidates', () => generateCandidates(view, user, o.candidates, event.timestampMs));
    const evidence = await this.timedAsync('evidence', () =>
      collectEvidence(view, { user, candidates, nowMs: event.timestampMs }, o.evidence, templates),
    );
    // The sampler may want a longer list than is published (a teacher case holds `candidatesPerCase`).
    const sampler = this.deps.sampler ?? null;
    const depth = Math.max(o.topK, sampler?.candidatesPerCase ?? 0);
    const scored = await this.timedAsync('ranking', () =>
      rankCase(scorer, { eventId: event.eventId, atMs: event.timestampMs, user: evidence.user, candidates: evidence.candidates }, depth),
    );
    const top = scored.length > o.topK ? scored.slice(0, o.topK) : scored;
    const ranked = templates ? top : this.timed('evidence', () => explainTop(top, evidence, this.deps.templates, candidates, o.evidence));
    if (sampler) {
      const sampled = this.sample(sampler, event, scored, evidence, templates !== null, candidates, scorer.modelVersion);
      if (sampled) {
        teacherCases.push(sampled);
        this.casesSampled++;
      }
    }
    this.onRanked?.({ event, ranked, candidates: evidence.candidates, modelVersion: scorer.modelVersion, arm, cell: scorer.cell ?? null });
    const now = this.clock();
    const rec = buildRecommendation(event, ranked, scorer.modelVersion, receivedAt, now, arm);
    this.deps.instruments.recommendationPublished(rec.pipelineLatencyMs / 1000);
    return rec;
  }

  /**
   * Offers the event to the sampler; a picked event is frozen into a case from this moment's state only. The
   * case's candidates get their CST sentences here when the scorer did not need them (the baseline renders
   * only what it publishes).
   */
  private sample(
    sampler: CaseSampler,
    event: Interaction,
    scored: readonly RankedCandidate[],
    evidence: CaseEvidence,
    rendered: boolean,
    candidates: CandidateSet,
    modelVersion: string,
  ): TeacherCase | null {
    const input = { eventId: event.eventId, atMs: event.timestampMs, user: evidence.user, ranked: scored, headPopularity: headPopularity(evidence.candidates) };
    const decision = sampler.decide(input);
    if (!decision) return null;
    const chosen = scored.slice(0, sampler.candidatesPerCase).map((s) => s.evidence);
    const withSentences = rendered ? chosen : renderSentences(chosen, evidence, this.deps.templates, candidates, this.options.evidence);
    this.deps.instruments.caseSampled(decision.reason);
    return toTeacherCase(input, decision, withSentences, { studentModel: modelVersion, templateVersion: this.deps.templates.version });
  }

  /**
   * Lets the event loop in when the processor has held it for `YIELD_EVERY_MS` since it last did; the runner
   * calls it too while it encodes a batch's outputs. The clock runs across batches: the embedded log hands
   * over the next batch without a turn of the loop, so a clock restarted per batch let the end of one batch
   * and the start of the next run as one long stretch.
   */
  async yieldIfDue(): Promise<void> {
    if (performance.now() - this.sliceStart <= YIELD_EVERY_MS) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.sliceStart = performance.now();
  }

  private timed<T>(stage: Stage, fn: () => T): T {
    const start = performance.now();
    try {
      return fn();
    } catch (err) {
      this.deps.instruments.stageFailed(stage, errorCode(err));
      throw err;
    } finally {
      this.deps.instruments.stageDuration(stage, (performance.now() - start) / 1000);
    }
  }

  private async timedAsync<T>(stage: Stage, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } catch (err) {
      this.deps.instruments.stageFailed(stage, errorCode(err));
      throw err;
    } finally {
      this.deps.instruments.stageDuration(stage, (performance.now() - start) / 1000);
    }
  }
}

/**
 * Routed, on a store that keeps outboxes: each user this batch writes carries every delta its events send
 * (learned or re-sent), so a crash before the send loses none of them (`stages/item-deltas/outbox.ts`).
 */
function keepOutboxes(view: StoreView, interactions: readonly Interaction[], sends: readonly (LearnedDeltas | null)[], written: ReadonlySet<string>): void {
  const byUser = new Map<string, LearnedDeltas[]>();
  sends.forEach((send, i) => {
    const userId = interactions[i]!.userId;
    if (send === null || !written.has(userId)) return;
    const list = byUser.get(userId);
    if (list) list.push(send);
    else byUser.set(userId, [send]);
  });
  for (const [userId, entries] of byUser) view.putUser({ ...view.user(userId)!, outbox: encodeOutbox(entries) });
}

function batchHint(events: readonly Interaction[]): BatchHint {
  return { userIds: [...new Set(events.map((e) => e.userId))], itemIds: [...new Set(events.map((e) => e.itemId))] };
}

function emptyResults(): { recommendations: Recommendation[]; eventTimesMs: number[]; teacherCases: TeacherCase[]; itemDeltas: ItemDeltaMessage[] } {
  return { recommendations: [], eventTimesMs: [], teacherCases: [], itemDeltas: [] };
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
