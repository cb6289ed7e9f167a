/**
 * Dynamic micro-batching: concurrent `submit` calls are queued and run together, so that many candidate lists
 * ranked at the same moment share one forward pass. A batch closes when its weight (candidates) reaches
 * `maxWeight` or when its oldest request has waited `maxWaitMs`; one batch runs at a time, and requests that
 * arrive meanwhile form the next one, so under load batches fill up by themselves while a lone request waits
 * at most `maxWaitMs`. A request heavier than `maxWeight` runs alone, never split.
 */

export interface MicroBatcherOptions {
  /** Weight (candidates) at which a batch closes at once. */
  readonly maxWeight: number;
  /** Longest a request waits for others before its batch runs, ms; 0 = only those of the same tick. */
  readonly maxWaitMs: number;
}

interface Pending<I, O> {
  readonly items: readonly I[];
  readonly weight: number;
  readonly resolve: (out: O[]) => void;
  readonly reject: (err: unknown) => void;
}

export class MicroBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private queuedWeight = 0;
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Batches run and requests served, for benchmarks and tests. */
  readonly stats = { batches: 0, requests: 0, items: 0 };

  constructor(
    /** Runs one batch; must return one output per item, in order. */
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly weight: (item: I) => number,
    private readonly options: MicroBatcherOptions,
  ) {}

  submit(items: readonly I[]): Promise<O[]> {
    if (this.closed) return Promise.reject(new Error('micro-batcher is closed'));
    if (items.length === 0) return Promise.resolve([]);
    let weight = 0;
    for (const item of items) weight += this.weight(item);
    return new Promise<O[]>((resolve, reject) => {
      this.queue.push({ items, weight, resolve, reject });
      this.queuedWeight += weight;
      this.schedule();
    });
  }

  /** Resolves once everything submitted so far has run; later `submit` calls are refused. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.queue.length > 0 || this.running) {
      if (!this.running) this.flush();
      await this.running;
    }
  }

  get queued(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.running) return; // the batch in flight flushes the queue when it ends
    if (this.queuedWeight >= this.options.maxWeight) {
      this.flush();
      return;
    }
    if (this.timer) return;
    const fire = (): void => {
      this.timer = null;
      if (!this.running) this.flush();
    };
    this.timer = this.options.maxWaitMs > 0 ? setTimeout(fire, this.options.maxWaitMs) : (setImmediate(fire) as unknown as NodeJS.Timeout);
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.queue.length === 0) return;
    const batch: Pending<I, O>[] = [];
    let weight = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (batch.length > 0 && weight + next.weight > this.options.maxWeight) break;
      batch.push(this.queue.shift()!);
      weight += next.weight;
    }
    this.queuedWeight -= weight;
    this.running = this.execute(batch).finally(() => {
      this.running = null;
      // Whatever arrived during the run has waited already: it goes next, without a further wait.
      if (this.queue.length > 0) this.flush();
    });
  }

  private async execute(batch: Pending<I, O>[]): Promise<void> {
    const items = batch.flatMap((p) => p.items);
    this.stats.batches++;
    this.stats.requests += batch.length;
    this.stats.items += items.length;
    let outputs: O[];
    try {
      outputs = await this.run(items);
      if (outputs.length !== items.length) throw new Error(`batch returned ${outputs.length} outputs for ${items.length} items`);
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    let at = 0;
    for (const p of batch) {
      p.resolve(outputs.slice(at, at + p.items.length));
      at += p.items.length;
    }
  }
}
