/**
 * Number and text formats shared by every sentence, so that the TypeScript server and the Python trainer print
 * the same digits: integers plainly, ratios with two decimals, shares as whole percents. Rounding is
 * `Math.round` (half up, towards +∞) of the binary value scaled by 100, which the Python port mirrors as
 * `math.floor(x * 100 + 0.5)`; so `fixed2(1.005)` is `1.00` on both sides.
 */
export const fmt = {
  int: (x: number): string => String(Math.round(x)),
  fixed2: (x: number): string => (Math.round(x * 100) / 100).toFixed(2),
  percent: (share: number): string => `${Math.round(share * 100)}%`,
  /** A time gap in the coarsest unit that still says it within half a unit: `"3 weeks"`, `"1 hour"`. */
  age: (ms: number): string => {
    const { value, unit } = ageOf(ms);
    return `${value} ${unit}${value === 1 ? '' : 's'}`;
  },
};

/** Units of `fmt.age`, each used below `below` ms; the last one has no bound. */
export const AGE_UNITS = [
  { unit: 'minute', ms: 60_000, below: 3_600_000 },
  { unit: 'hour', ms: 3_600_000, below: 2 * 86_400_000 },
  { unit: 'day', ms: 86_400_000, below: 14 * 86_400_000 },
  { unit: 'week', ms: 7 * 86_400_000, below: 60 * 86_400_000 },
  { unit: 'month', ms: 30 * 86_400_000, below: 730 * 86_400_000 },
  { unit: 'year', ms: 365 * 86_400_000, below: Number.POSITIVE_INFINITY },
] as const;

/** `ms` (clamped at 0) as a whole number of its unit, at least 1: "0 minutes" would claim a gap of none. */
export function ageOf(ms: number): { value: number; unit: (typeof AGE_UNITS)[number]['unit'] } {
  const gap = Math.max(0, ms);
  const u = AGE_UNITS.find((x) => gap < x.below) ?? AGE_UNITS[AGE_UNITS.length - 1]!;
  return { value: Math.max(1, Math.round(gap / u.ms)), unit: u.unit };
}

const MAX_TITLE_LENGTH = 80;
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f<>{}"[\]]/g;

/**
 * Item titles are untrusted: strip control characters and the characters the prompt uses for structure
 * (`<>` of markers, `[]` of the tokenizer's special tokens such as `[SEP]`, `{}` of placeholders, `"` of
 * quotes), and bound the length. What remains is data.
 */
export function sanitiseTitle(title: string | null, fallbackId: string): string {
  const text = (title ?? '').replace(UNSAFE, ' ').replace(/\s+/g, ' ').trim();
  const bounded = text.length > MAX_TITLE_LENGTH ? `${text.slice(0, MAX_TITLE_LENGTH - 1)}…` : text;
  return bounded.length > 0 ? bounded : `item ${fallbackId.replace(UNSAFE, '')}`;
}
