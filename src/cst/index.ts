/**
 * Collaborative Signal Translation: the versioned templates and the sentences rendered from them. One module
 * for the evidence stage, STAR's prompt and the teacher's tools, so the student reads exactly the evidence the
 * teacher could fetch. It depends on nothing of the pipeline: callers compute the facts, CST words them.
 */
export { AGE_UNITS, ageOf, fmt, sanitiseTitle } from './format.ts';
export {
  categorySentence,
  cooccurrenceSentence,
  embeddingSentence,
  neighboursSentence,
  newUserSentence,
  popularitySentence,
  trendWord,
  type CooccurrenceFacts,
  type PopularityFacts,
} from './sentences.ts';
export {
  DEFAULT_TEMPLATE_FILE,
  loadCstTemplates,
  parseSentence,
  render,
  TEMPLATE_KEYS,
  type CstTemplates,
  type ParsedSentence,
  type TemplateKey,
  type TemplateValues,
} from './templates.ts';
