import { hashString } from '../data/random.ts';
import { HOLDOUT, type Experiment, type ScorerRef } from './definition.ts';

/**
 * Which arm serves a user. A pure function of (user id, salt, arm names and shares, holdout share): no state,
 * so every instance, before and after a restart, puts a user in the same arm.
 *
 * 1. Holdout. The user's uniform `h = hash(salt, "holdout", user)` in (0, 1); `h < holdoutShare` keeps the
 *    user on the champion, outside the test.
 * 2. Arms, by a weighted rendezvous hash (an "exponential race"): each arm draws `u = hash(salt, arm, user)`
 *    in (0, 1) and scores `-ln(u) / share`, an Exp(share) variable; the smallest score wins. The minimum of
 *    independent exponentials is arm i with probability `share_i / Σ share`, so the shares hold exactly in
 *    expectation.
 *
 * What this buys when the experiment changes (the salt kept). The race only compares shares with each other,
 * so scaling all of them by one factor changes nothing; hence:
 * - Adding an arm, the old arms keeping their shares' ratios (50/50 → thirds), only moves users into the new
 *   arm; nobody moves between two old arms. That moves the new arm's share of users, the least any scheme can.
 * - Retiring an arm, the others keeping their ratios (50/30/20 → 5/7, 2/7), only moves that arm's users.
 * - Growing one arm's share, the others keeping their ratios, only moves users into it (and shrinking it only
 *   moves its users out). Reweighting two or more arms against each other is not minimal: users can move
 *   between arms whose share did not change.
 * - Raising the holdout share only moves users into the holdout, and the arms of the users left are unchanged.
 * - A new salt draws every hash afresh: the arms are reshuffled, independent of the old assignment.
 *
 * Contiguous ranges of one hash (arm i takes [c_{i-1}, c_i)) would shift the boundaries of every arm after a
 * change and move users between arms that did not change.
 */

export interface Assignment {
  /** Arm whose scorer serves the user: the champion for a holdout user. */
  readonly arm: string;
  readonly scorer: ScorerRef;
  /** True for a user in the holdout: served by the champion, counted apart from the champion's arm. */
  readonly holdout: boolean;
}

/** Accounting cell of an assignment: the arm's name, or {@link HOLDOUT}. */
export function cellOf(assignment: Assignment): string {
  return assignment.holdout ? HOLDOUT : assignment.arm;
}

export function assignArm(userId: string, experiment: Experiment): Assignment {
  const champion = experiment.arms.find((arm) => arm.name === experiment.champion)!;
  if (experiment.holdoutShare > 0 && unitHash(experiment.salt, HOLDOUT, userId) < experiment.holdoutShare) {
    return { arm: champion.name, scorer: champion.scorer, holdout: true };
  }
  let best = champion;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const arm of experiment.arms) {
    const score = -Math.log(unitHash(experiment.salt, arm.name, userId)) / arm.share;
    if (score < bestScore) {
      bestScore = score;
      best = arm;
    }
  }
  return { arm: best.name, scorer: best.scorer, holdout: false };
}

const TWO_POW_32 = 4294967296;

/** A uniform in (0, 1), never 0 (its log is finite) nor 1, from a 32-bit hash of the three parts. */
function unitHash(salt: string, label: string, userId: string): number {
  // NUL separators: no salt, arm name (restricted characters) or user id can run into the next part.
  return (hashString(`${salt}\u0000${label}\u0000${userId}`) + 0.5) / TWO_POW_32;
}
