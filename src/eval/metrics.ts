/** Ranking metrics over one case: the rank (0-based) of the true item, or -1 when it was not ranked. */

export function hitAt(rank: number, k: number): number {
  return rank >= 0 && rank < k ? 1 : 0;
}

/** NDCG@k with a single relevant item: 1/log2(rank+2) inside the cut-off. */
export function ndcgAt(rank: number, k: number): number {
  return rank >= 0 && rank < k ? 1 / Math.log2(rank + 2) : 0;
}

/** Running means of named metrics. */
export class MetricMeans {
  private readonly sums = new Map<string, number>();
  count = 0;

  add(values: Readonly<Record<string, number>>): void {
    this.count++;
    for (const [name, value] of Object.entries(values)) this.sums.set(name, (this.sums.get(name) ?? 0) + value);
  }

  mean(name: string): number {
    return this.count === 0 ? 0 : (this.sums.get(name) ?? 0) / this.count;
  }
}
