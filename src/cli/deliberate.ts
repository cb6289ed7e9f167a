import { Writable } from 'node:stream';

/** Dead-letter codes of the records the demo malforms on purpose (garbage bytes, a NaN value). */
const DELIBERATE_CODES: ReadonlySet<string> = new Set(['UNDECODABLE', 'NON_FINITE_VALUE']);

/**
 * The demo's log destination: passes every line through to `target` except the pipeline's `dead-lettered`
 * warnings for the records the demo malformed on purpose, which it counts instead, so the summary says it in
 * one line ("16: all of them malformed on purpose …") rather than in 16 raw JSON warnings. Dead letters with
 * any other code (a real problem) are still logged.
 */
export class DeliberateDeadLetters extends Writable {
  hidden = 0;

  constructor(private readonly target: { write(line: string): unknown }) {
    super({ decodeStrings: false });
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    if (!this.isDeliberate(text)) this.target.write(text);
    callback();
  }

  private isDeliberate(line: string): boolean {
    if (!line.includes('"dead-lettered"')) return false;
    try {
      const entry = JSON.parse(line) as { msg?: unknown; code?: unknown };
      if (entry.msg === 'dead-lettered' && typeof entry.code === 'string' && DELIBERATE_CODES.has(entry.code)) {
        this.hidden++;
        return true;
      }
    } catch {
      // Not one JSON log line: pass it through.
    }
    return false;
  }
}
