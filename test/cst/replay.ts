import { parseSentence, type CstTemplates } from '../../src/cst/index.ts';
import type { Interaction, Item } from '../../src/domain/events.ts';
import type { Engine } from '../../src/main.ts';
import { generateCandidates } from '../../src/stages/candidates/index.ts';
import { collectEvidence, type EvidenceOptions } from '../../src/stages/evidence/index.ts';
import { StoreView } from '../../src/stages/state/store-view.ts';
import { contradictions } from './truth.ts';

/**
 * Replays events through an engine the way the processor handles them (learn the event, then rank on the state
 * right after it, before the next is learned) and checks the CST sentences of every `checkEvery`-th event
 * against that state (`contradictions`).
 */

export interface ReplayReport {
  readonly cases: number;
  readonly sentences: number;
  /** Sentences per template key, to show which templates a run exercised. */
  readonly byKey: Map<string, number>;
  readonly contradictions: string[];
}

export async function replayAndCheck(
  engine: Engine,
  catalogue: readonly Item[],
  events: Iterable<Interaction>,
  templates: CstTemplates,
  options: { readonly checkEvery?: number; readonly evidence?: Partial<EvidenceOptions> } = {},
): Promise<ReplayReport> {
  const every = options.checkEvery ?? 1;
  const evidenceOptions: EvidenceOptions = { ...engine.caseOptions.evidence, maxSentences: 10, ...options.evidence };
  await engine.store.putItemMetadata(catalogue.map((i) => ({ itemId: i.itemId, title: i.title, categories: i.categories })));
  const negativesPerEvent = engine.config.embeddings.negatives;
  const report = { cases: 0, sentences: 0, byKey: new Map<string, number>(), contradictions: [] as string[] };
  let n = 0;
  for (const event of events) {
    const view = new StoreView(engine.store, engine.mergeItem);
    const negatives = engine.negatives.sample(negativesPerEvent, event.itemId);
    engine.negatives.observe(event.itemId);
    await view.load([event.userId], []);
    await view.load([], engine.learner.itemsToLoad(view.user(event.userId), event, negatives));
    const user = engine.learner.learn(view, event, negatives);
    if (n++ % every === 0) {
      const candidates = await generateCandidates(view, user, engine.caseOptions.candidates, event.timestampMs);
      const evidence = await collectEvidence(view, { user, candidates, nowMs: event.timestampMs }, evidenceOptions, templates);
      report.cases++;
      for (const c of evidence.candidates) {
        report.sentences += c.sentences.length;
        for (const s of c.sentences) {
          const key = templateKeyOf(s, templates);
          report.byKey.set(key, (report.byKey.get(key) ?? 0) + 1);
        }
      }
      const found = await contradictions({ view, engine, user, atMs: event.timestampMs, candidates: evidence.candidates }, templates);
      for (const f of found) report.contradictions.push(`event ${event.eventId} (user ${event.userId}): ${f}`);
    }
    await view.commit();
  }
  return report;
}

function templateKeyOf(sentence: string, templates: CstTemplates): string {
  return parseSentence(sentence, templates)?.key ?? 'unknown';
}
