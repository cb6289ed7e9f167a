/**
 * What grew between two V8 heap snapshots, by constructor: the count and retained-by-self bytes of every
 * object kind in each, and the kinds that grew most. Used by the soak (`--heap-snapshots`) to say what a
 * memory trend is made of.
 *
 *   npx tsx bench/heap-diff.ts out/soak-mid.heapsnapshot out/soak-end.heapsnapshot
 *
 * Snapshots of a busy pipeline are hundreds of MB, too big for one `JSON.parse`, so they are read line by
 * line: V8 writes the header on the first line, then one node per line under `"nodes":[`, …, and one string
 * per line under `"strings":[`. Nodes are aggregated while they stream past; names are resolved at the end.
 * Strings, arrays, code and closures are grouped by kind (their "name" is their content), objects by
 * constructor name.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { runAsScript, table, type Row } from './report.ts';

export interface HeapKind {
  readonly kind: string;
  readonly count: number;
  readonly bytes: number;
}

export interface HeapGrowth {
  readonly before: { readonly file: string; readonly bytes: number; readonly nodes: number };
  readonly after: { readonly file: string; readonly bytes: number; readonly nodes: number };
  /** Kinds sorted by bytes gained, largest first (at most `top`). */
  readonly grew: readonly (HeapKind & { readonly countDelta: number; readonly bytesDelta: number })[];
}

/** Node types whose name is the object's constructor; for the others the name is content. */
const NAMED_TYPES = new Set(['object', 'native', 'hidden', 'synthetic']);

export async function readHeapKinds(file: string): Promise<Map<string, HeapKind>> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let section: 'header' | 'nodes' | 'skip' | 'strings' = 'header';
  let header = '';
  let fields: string[] = [];
  let types: string[] = [];
  const agg = new Map<number, { type: number; name: number; count: number; bytes: number }>();
  const strings: string[] = [];
  let at: { type: number; name: number; size: number; width: number } | null = null;
  let pending: number[] = [];
  for await (const line of lines) {
    if (section === 'header') {
      const n = line.indexOf('"nodes":[');
      if (n < 0) {
        header += line;
        continue;
      }
      header += line.slice(0, n);
      const meta = (JSON.parse(`${header.replace(/,\s*$/, '')}}`) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } } }).snapshot.meta;
      fields = meta.node_fields;
      types = meta.node_types[0];
      at = { type: fields.indexOf('type'), name: fields.indexOf('name'), size: fields.indexOf('self_size'), width: fields.length };
      section = 'nodes';
      pending = numbers(line.slice(n + '"nodes":['.length));
    } else if (section === 'nodes') {
      if (line.startsWith('"edges":[') || line.startsWith('],') || line.startsWith(']')) {
        section = 'skip';
        continue;
      }
      pending.push(...numbers(line));
    } else if (section === 'skip') {
      if (line.startsWith('"strings":[')) {
        section = 'strings';
        const rest = line.slice('"strings":['.length);
        if (rest.length > 0) strings.push(JSON.parse(rest.replace(/,$/, '')) as string);
      }
      continue;
    } else {
      const text = line.replace(/\]\}?$/, '').replace(/,$/, '');
      if (text.length > 0) strings.push(JSON.parse(text) as string);
      continue;
    }
    // Aggregate whole nodes as they complete.
    const w = at!.width;
    let i = 0;
    for (; i + w <= pending.length; i += w) {
      const type = pending[i + at!.type]!;
      const name = NAMED_TYPES.has(types[type] ?? '') ? pending[i + at!.name]! : -1;
      const key = type * 2 ** 32 + (name + 1);
      const entry = agg.get(key) ?? { type, name, count: 0, bytes: 0 };
      entry.count++;
      entry.bytes += pending[i + at!.size]!;
      agg.set(key, entry);
    }
    pending = pending.slice(i);
  }
  if (section !== 'strings') throw new Error(`${file}: not a complete V8 heap snapshot (stopped in its ${section} section)`);
  const kinds = new Map<string, HeapKind>();
  for (const { type, name, count, bytes } of agg.values()) {
    const kind = name < 0 ? `(${types[type] ?? type})` : `${strings[name] ?? '?'} (${types[type]})`;
    const prev = kinds.get(kind);
    kinds.set(kind, { kind, count: (prev?.count ?? 0) + count, bytes: (prev?.bytes ?? 0) + bytes });
  }
  return kinds;
}

function numbers(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const t = part.trim();
    if (t.length > 0 && t !== ']') out.push(Number(t.replace(/\]$/, '')));
  }
  return out;
}

export async function heapGrowth(beforeFile: string, afterFile: string, top = 15): Promise<HeapGrowth> {
  const [before, after] = [await readHeapKinds(beforeFile), await readHeapKinds(afterFile)];
  const total = (m: Map<string, HeapKind>) => [...m.values()].reduce((a, k) => ({ bytes: a.bytes + k.bytes, nodes: a.nodes + k.count }), { bytes: 0, nodes: 0 });
  const names = new Set([...before.keys(), ...after.keys()]);
  const grew = [...names]
    .map((kind) => {
      const a = before.get(kind) ?? { kind, count: 0, bytes: 0 };
      const b = after.get(kind) ?? { kind, count: 0, bytes: 0 };
      return { kind, count: b.count, bytes: b.bytes, countDelta: b.count - a.count, bytesDelta: b.bytes - a.bytes };
    })
    .sort((x, y) => y.bytesDelta - x.bytesDelta)
    .slice(0, top);
  return { before: { file: beforeFile, ...total(before) }, after: { file: afterFile, ...total(after) }, grew };
}

export function heapGrowthMarkdown(g: HeapGrowth): string {
  const mb = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
  const rows: Row[] = g.grew.map((k) => ({ kind: k.kind, 'objects': k.count, 'Δ objects': k.countDelta, 'MB': mb(k.bytes), 'Δ MB': mb(k.bytesDelta) }));
  return (
    `## Heap snapshot diff\n\n${g.before.file} → ${g.after.file}: ${mb(g.before.bytes)} → ${mb(g.after.bytes)} MB live, ` +
    `${g.before.nodes.toLocaleString('en-US')} → ${g.after.nodes.toLocaleString('en-US')} objects. What grew most:\n\n${table(rows)}`
  );
}

runAsScript(import.meta.url, async () => {
  const [a, b] = process.argv.slice(2);
  if (!a || !b) throw new Error('usage: bench/heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot');
  process.stdout.write(heapGrowthMarkdown(await heapGrowth(a, b)));
});
