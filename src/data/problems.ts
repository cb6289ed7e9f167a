/**
 * What is wrong with a user's file, tallied by kind: how many rows, the first few line numbers and the first
 * message, so a report stays a few lines long whatever the file size (`validate`, the import's warnings).
 */

/** Kinds of problem, in the order a report lists them. */
export const PROBLEM_KINDS = {
  unreadable: 'unreadable rows',
  'bad-value': 'bad values',
  'time-order': 'out of time order',
  'duplicate-row': 'duplicate rows',
  'duplicate-id': 'duplicate event ids',
  'unknown-item': 'item ids not in the catalogue',
  'catalogue-unreadable': 'catalogue: unreadable rows',
  'catalogue-bad-value': 'catalogue: bad values',
  'catalogue-duplicate-id': 'catalogue: duplicate item ids',
} as const;

export type ProblemKind = keyof typeof PROBLEM_KINDS;

/** Line numbers kept per kind. */
export const PROBLEM_LINES_KEPT = 5;

export interface Problem {
  readonly kind: ProblemKind;
  readonly count: number;
  /** The first {@link PROBLEM_LINES_KEPT} lines (1-based), in file order. */
  readonly lines: readonly number[];
  /** The first one's message, with its line. */
  readonly first: string;
}

export class ProblemTally {
  private readonly byKind = new Map<ProblemKind, { count: number; lines: number[]; first: string }>();

  add(kind: ProblemKind, line: number, message: string): void {
    const entry = this.byKind.get(kind);
    if (!entry) {
      this.byKind.set(kind, { count: 1, lines: [line], first: `line ${line}: ${message}` });
      return;
    }
    entry.count++;
    if (entry.lines.length < PROBLEM_LINES_KEPT) entry.lines.push(line);
  }

  count(kind: ProblemKind): number {
    return this.byKind.get(kind)?.count ?? 0;
  }

  /** Every kind seen, in {@link PROBLEM_KINDS} order. */
  list(): Problem[] {
    return (Object.keys(PROBLEM_KINDS) as ProblemKind[]).flatMap((kind) => {
      const e = this.byKind.get(kind);
      return e ? [{ kind, count: e.count, lines: e.lines, first: e.first }] : [];
    });
  }
}
