/**
 * Fixtures of the teacher tests: the real embedded store filled by a short generated stream (learned event
 * by event, as the pipeline does), and teacher cases built from it by the pipeline's own candidate and
 * evidence stages, as the sampler builds them.
 */
import { generateCatalogue, generateStream } from '../../src/data/synthetic.ts';
import type { Interaction } from '../../src/domain/events.ts';
import type { TeacherCase } from '../../src/domain/teacher.ts';
import type { Engine } from '../../src/main.ts';
import { prepareCase } from '../../src/pipeline/recommend.ts';
import { DEFAULT_TEACHER_LIMITS, type TeacherLimits } from '../../src/teacher/limits.ts';
import type { TeacherDeps } from '../../src/teacher/run.ts';
import type { LanguageModel } from '../../src/teacher/llm/port.ts';
import { learnOne, newView, smallEngine } from '../stages/fixtures.ts';

export const WORLD = { users: 40, items: 120, events: 1_500, seed: 3 };

export interface Filled {
  readonly engine: Engine;
  readonly events: readonly Interaction[];
}

/** An engine whose store has learned the first `upTo` events of the generated stream (with the catalogue). */
export async function filledStore(upTo = WORLD.events): Promise<Filled> {
  const engine = await smallEngine();
  const events = [...generateStream(WORLD)];
  await engine.store.putItemMetadata(generateCatalogue(WORLD).map((i) => ({ itemId: i.itemId, title: i.title, categories: i.categories })));
  for (const e of events.slice(0, upTo)) await learnOne(engine, e);
  return { engine, events };
}

export async function learnMore(filled: Filled, from: number, to: number): Promise<void> {
  for (const e of filled.events.slice(from, to)) await learnOne(filled.engine, e);
}

/** The case the sampler would cut for `event` (already learned): the pipeline's candidates and CST evidence. */
export async function caseFor(engine: Engine, event: Interaction, candidates = 8): Promise<TeacherCase> {
  const view = newView(engine);
  const user = (await view.usersById([event.userId])).get(event.userId);
  if (!user) throw new Error(`no profile for ${event.userId}`);
  const prepared = await prepareCase(view, user, engine.caseOptions, event.timestampMs, engine.templates);
  const picked = prepared.evidence.candidates.slice(0, candidates);
  return {
    caseId: `case-${event.eventId}`,
    eventId: event.eventId,
    atMs: event.timestampMs,
    reason: 'uniform',
    margin: null,
    user: prepared.evidence.user,
    candidates: picked,
    studentScores: picked.map((_, i) => 1 - i / picked.length),
    studentModel: 'baseline',
    templateVersion: engine.templates.version,
  };
}

/** A hand-made case with the given candidates (titles included), for protocol tests that need no store. */
export function syntheticCase(candidates: readonly { itemId: string; title?: string }[], overrides: Partial<TeacherCase> = {}): TeacherCase {
  const features = {
    cooccurrence: 0,
    cooccurrenceRecent: 0,
    cooccurringRecentItems: 0,
    neighbourEngagement: 0,
    embeddingScore: 0,
    popularity: 0,
    recentPopularity: 0,
    trend: 1,
    categoryFit: 0,
  };
  return {
    caseId: 'case-e1',
    eventId: 'e1',
    atMs: Date.UTC(2025, 0, 2),
    reason: 'uniform',
    margin: null,
    user: {
      userId: 'u1',
      interactionCount: 2,
      recentItems: [
        { itemId: 'h1', title: 'First history item', atMs: Date.UTC(2025, 0, 1, 23) },
        { itemId: 'h2', title: 'Second history item', atMs: Date.UTC(2025, 0, 1, 22) },
      ],
      categoryMix: [{ category: 'books', share: 1 }],
    },
    candidates: candidates.map((c) => ({
      itemId: c.itemId,
      title: c.title ?? `Title of ${c.itemId}`,
      categories: ['books'],
      sources: ['popular'],
      features,
      sentences: ['New to the catalogue: 0 interactions so far.'],
    })),
    studentScores: candidates.map(() => 0),
    studentModel: 'baseline',
    templateVersion: 'cst-1',
    ...overrides,
  };
}

export function teacherDeps(engine: Engine, model: LanguageModel, limits: Partial<TeacherLimits> = {}): TeacherDeps {
  return {
    model,
    store: engine.store,
    limits: { ...DEFAULT_TEACHER_LIMITS, ...limits },
    templates: engine.templates,
    evidence: engine.caseOptions.evidence,
  };
}
