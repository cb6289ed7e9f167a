/**
 * The agents of MARS and what each is for. Which agent runs when is decided by `teacher/run.ts`, never by
 * model text: the planner only chooses which analysts to brief (from this fixed list) and with what focus.
 */

export const ANALYSTS = ['profile', 'long_term', 'recent', 'divergence'] as const;
export type Analyst = (typeof ANALYSTS)[number];

export const AGENTS = ['planner', ...ANALYSTS, 'reflector', 'ranker'] as const;
export type AgentName = (typeof AGENTS)[number];

export const ANALYST_BRIEFS: Readonly<Record<Analyst, { readonly title: string; readonly brief: string }>> = {
  profile: {
    title: 'user profile analyst',
    brief: 'Describe who this user is: how active, how long around, their category mix, the kind of items they pick (popular or niche).',
  },
  long_term: {
    title: 'long-term interest analyst',
    brief: 'Find the stable interests across the whole history: categories and kinds of items the user keeps returning to, and which candidates fit them.',
  },
  recent: {
    title: 'recent interest analyst',
    brief: 'Find what the user is into right now: the last few items, what usually follows them for other users (item-CF), and which candidates continue that.',
  },
  divergence: {
    title: 'interest divergence analyst',
    brief: 'Find where recent behaviour departs from the long-term interests (drift, exploration, a one-off), judge whether the next item will more likely follow the recent or the long-term pattern, and which candidates similar users moved to.',
  },
};

/** Canonical order: analysts always run in this order, whatever order the planner named them in. */
export function inCanonicalOrder<T extends { analyst: Analyst }>(tasks: readonly T[]): T[] {
  return [...tasks].sort((a, b) => ANALYSTS.indexOf(a.analyst) - ANALYSTS.indexOf(b.analyst));
}
