import { z } from 'zod';
import { ConfigError } from '../errors/index.ts';

/**
 * An online experiment: arms that serve different scorers to disjoint sets of users, a champion (the control),
 * optionally a holdout kept on the champion, the sequential test's settings and the guardrails. Validated
 * once by {@link compileExperiment} into a frozen {@link Experiment}. {@link experimentSchema} is the optional
 * `experiment` section of the config schema (`src/config/schema.ts`); the composition root serves its arms
 * (`arms.ts`), joins outcomes (`join.ts`) and judges it (`runtime.ts`).
 */

const positiveInt = () => z.number().int().positive();

/** Name used for the holdout cell in accounting and reports; no arm may take it. */
export const HOLDOUT = 'holdout';

/** Arm and experiment names become metric label values and file names. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** What an arm serves: one of the pipeline's scorers, or a STAR model version from the registry. */
export const scorerRefSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('baseline').describe('Collaborative features (ranking.scorer = baseline)') }),
  z.strictObject({ kind: z.literal('online').describe('The online blend (ranking.scorer = online)') }),
  z.strictObject({
    kind: z.literal('star').describe('A STAR model from the registry'),
    version: z.string().min(1).describe('Registry version (`star-…`), or `CURRENT` for whatever the registry serves'),
  }),
]);
export type ScorerRef = z.infer<typeof scorerRefSchema>;

const armSchema = z.strictObject({
  name: z.string().regex(NAME_PATTERN, 'lower-case letters, digits, . _ -; at most 63 characters').describe('Arm name, a metric label'),
  scorer: scorerRefSchema.describe('What this arm serves'),
  share: z.number().positive().max(1).describe('Share of the experiment traffic (after the holdout); shares sum to 1'),
});

const testSchema = z
  .strictObject({
    alpha: z
      .number()
      .gt(0)
      .max(0.5)
      .default(0.05)
      .describe('Type-I error of the whole experiment, spread over its challengers (Bonferroni), valid at every look'),
    mixtureSd: z
      .number()
      .positive()
      .max(1)
      .default(0.02)
      .describe('mSPRT mixing sd over the hit-rate difference: the effect size the test is tuned to detect fastest'),
    minOutcomesPerArm: positiveInt()
      .default(1_000)
      .describe('No hit-rate decision before the champion and the challenger each have this many joined outcomes'),
    maxOutcomes: positiveInt()
      .default(200_000)
      .describe('Maximum duration, in joined outcomes over all arms (holdout excluded); then undecided challengers stop as inconclusive'),
  })
  .prefault({});

const guardrailsSchema = z
  .strictObject({
    maxP99LatencyMs: z
      .number()
      .positive()
      .default(250)
      .describe('A challenger whose p99 scoring latency exceeds this is rolled back at once, ms'),
    maxErrorRate: z
      .number()
      .min(0)
      .max(1)
      .default(0.01)
      .describe('A challenger whose share of failed requests exceeds this is rolled back at once, 0..1'),
    minRequests: positiveInt()
      .default(200)
      .describe('Requests a challenger must have served before its guardrails are judged (a p99 needs a sample)'),
  })
  .prefault({});

export const experimentSchema = z
  .strictObject({
    name: z.string().regex(NAME_PATTERN, 'lower-case letters, digits, . _ -; at most 63 characters').describe('Experiment name, a metric label'),
    salt: z
      .string()
      .min(1)
      .describe('Mixed into the user hash; a new salt reshuffles every user. Keep it fixed for the life of the experiment'),
    arms: z.array(armSchema).min(2).max(16).describe('The champion and its challengers'),
    champion: z.string().optional().describe('Arm that is the control and serves the holdout; unset = the first arm'),
    holdoutShare: z
      .number()
      .min(0)
      .max(0.5)
      .default(0)
      .describe('Share of all users kept on the champion and outside the test (long-term control), 0..0.5'),
    k: positiveInt().max(1000).default(10).describe('Cut-off of hit@K and NDCG@K'),
    test: testSchema.describe('The sequential test (mSPRT on the hit@K difference)'),
    guardrails: guardrailsSchema.describe('Bounds that roll a challenger back whatever its hit rate'),
    stateDir: z
      .string()
      .min(1)
      .default('data/experiments')
      .describe('Folder of the running experiment: stateDir/name/state.json (accounting, retired arms) and its decision reports'),
    lookEveryMs: z
      .number()
      .int()
      .nonnegative()
      .default(60_000)
      .describe('How often the running pipeline judges the experiment and writes a report, ms; 0 = only at shutdown'),
    instance: z
      .string()
      .regex(NAME_PATTERN, 'lower-case letters, digits, . _ -; at most 63 characters')
      .optional()
      .describe(
        'This pipeline instance\'s name, stable across its restarts (a StatefulSet pod name), when several instances share stateDir: ' +
          'each keeps its counts in stateDir/name/instances/INSTANCE.json and every look judges the sum over all of them; unset = stateDir/name/state.json',
      ),
  })
  .superRefine((value, ctx) => {
    const names = new Set<string>();
    value.arms.forEach((arm, i) => {
      if (arm.name === HOLDOUT) ctx.addIssue({ code: 'custom', path: ['arms', i, 'name'], message: `"${HOLDOUT}" is reserved` });
      if (names.has(arm.name)) ctx.addIssue({ code: 'custom', path: ['arms', i, 'name'], message: `duplicate arm ${arm.name}` });
      names.add(arm.name);
    });
    const total = value.arms.reduce((sum, arm) => sum + arm.share, 0);
    if (Math.abs(total - 1) > 1e-6) {
      ctx.addIssue({ code: 'custom', path: ['arms'], message: `shares must sum to 1, got ${Number(total.toFixed(9))}` });
    }
    if (value.champion !== undefined && !names.has(value.champion)) {
      ctx.addIssue({ code: 'custom', path: ['champion'], message: `no arm named ${value.champion}` });
    }
  });

export type ExperimentInput = z.input<typeof experimentSchema>;

export interface Arm {
  readonly name: string;
  readonly scorer: ScorerRef;
  readonly share: number;
}

/** The validated, frozen form every other module in this folder takes. */
export interface Experiment {
  readonly name: string;
  readonly salt: string;
  readonly arms: readonly Arm[];
  /** Resolved: always an arm's name. */
  readonly champion: string;
  /** The other arms, in declaration order. */
  readonly challengers: readonly string[];
  readonly holdoutShare: number;
  readonly k: number;
  readonly test: { readonly alpha: number; readonly mixtureSd: number; readonly minOutcomesPerArm: number; readonly maxOutcomes: number };
  readonly guardrails: { readonly maxP99LatencyMs: number; readonly maxErrorRate: number; readonly minRequests: number };
  readonly stateDir: string;
  readonly lookEveryMs: number;
  /** This instance's name among several sharing `stateDir`; null = `state.json`. */
  readonly instance: string | null;
}

/** Validates `input` and freezes it; throws {@link ConfigError} naming the first bad field. */
export function compileExperiment(input: unknown): Experiment {
  const result = experimentSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = (issue?.path ?? []).map(String);
    throw new ConfigError(['experiment', ...path].join('.'), issue?.message ?? 'invalid', { cause: result.error });
  }
  const value = result.data;
  const champion = value.champion ?? value.arms[0]!.name;
  return deepFreeze({
    name: value.name,
    salt: value.salt,
    arms: value.arms.map((arm) => ({ name: arm.name, scorer: arm.scorer, share: arm.share })),
    champion,
    challengers: value.arms.map((arm) => arm.name).filter((name) => name !== champion),
    holdoutShare: value.holdoutShare,
    k: value.k,
    test: value.test,
    guardrails: value.guardrails,
    stateDir: value.stateDir,
    lookEveryMs: value.lookEveryMs,
    instance: value.instance ?? null,
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
