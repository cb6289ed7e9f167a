/**
 * Progress for long work: one line every `everyMs` with count, share, rate and ETA, on stderr so stdout
 * stays clean for results. Plain lines rather than a redrawn bar, so logs and CI output stay readable.
 */
export class Progress {
  private readonly started = performance.now();
  private lastPrinted = 0;

  constructor(
    private readonly label: string,
    private readonly total: number | null,
    private readonly everyMs = 2_000,
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {}

  update(done: number, extra = ''): void {
    const now = performance.now();
    if (now - this.lastPrinted < this.everyMs) return;
    this.lastPrinted = now;
    this.write(this.line(done, extra));
  }

  finish(done: number, extra = ''): void {
    this.write(this.line(done, extra));
  }

  private line(done: number, extra: string): string {
    const seconds = (performance.now() - this.started) / 1000;
    const rate = done / Math.max(seconds, 1e-9);
    const parts = [`${this.label} ${done.toLocaleString('en-US')}`];
    if (this.total) {
      parts[0] += `/${this.total.toLocaleString('en-US')} (${((100 * done) / this.total).toFixed(0)}%)`;
      const eta = rate > 0 ? (this.total - done) / rate : Infinity;
      parts.push(`${Math.round(rate).toLocaleString('en-US')}/s`, `ETA ${formatSeconds(eta)}`);
    } else {
      parts.push(`${Math.round(rate).toLocaleString('en-US')}/s`);
    }
    if (extra) parts.push(extra);
    return parts.join('  ');
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  // Rounded once, so 359.6 s reads 6m00s, never 5m60s.
  const whole = Math.round(s);
  if (whole < 60) return `${whole}s`;
  return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
}
