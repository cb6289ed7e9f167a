import { readFileSync, readdirSync } from 'node:fs';
import { parse } from 'yaml';
import { catalogEntries } from '../../src/ops/catalog.ts';
import { defaultProcessMetrics } from '../../src/ops/catalog-docs.ts';

/** Where the PromQL lives: every Grafana dashboard and the alert/recording rules. */
export const DASHBOARD_DIR = new URL('../../dashboards/', import.meta.url);
export const RULES_FILE = new URL('../../deploy/prometheus/alerts.yml', import.meta.url);

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression reads. A small lexer, not a parser: strings, label matchers, ranges,
 * grouping clauses and Grafana variables are removed; what remains that looks like an identifier and is not a
 * function call or a keyword is a metric name. (The real-Prometheus test also runs each query for syntax.)
 */
export function metricNames(expr: string): string[] {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = s.slice(m.index + m[0].length);
    if (/^\s*\(/.test(after)) continue; // function or aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    if (/^[0-9]/.test(m[0])) continue;
    // Exponent or duration parts of numbers: "1e3", "7 * 86400" never start identifiers; "5m" would, but ranges are gone.
    const before = s.slice(0, m.index);
    if (/[0-9.]$/.test(before)) continue;
    names.push(m[0]);
  }
  return names;
}

/** Every series name that exists: catalog metrics (with histogram series), process metrics, Prometheus' own. */
export function knownSeries(recorded: readonly string[] = []): Set<string> {
  const known = new Set<string>(['up', ...recorded]);
  const add = (name: string, type: string): void => {
    known.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) known.add(`${name}${suffix}`);
  };
  for (const m of catalogEntries()) add(m.name, m.type);
  for (const m of defaultProcessMetrics()) add(m.name, m.type);
  return known;
}

export interface Query {
  readonly where: string;
  readonly expr: string;
}

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

export function dashboardFiles(): string[] {
  return readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith('.json')).sort();
}

export function dashboardQueries(): Query[] {
  const out: Query[] = [];
  for (const file of dashboardFiles()) {
    const dashboard = JSON.parse(readFileSync(new URL(file, DASHBOARD_DIR), 'utf8')) as { panels?: Panel[] };
    const walk = (panels: Panel[] | undefined): void => {
      for (const p of panels ?? []) {
        for (const t of p.targets ?? []) if (t.expr) out.push({ where: `${file}: ${p.title ?? '(untitled)'}`, expr: t.expr });
        walk(p.panels);
      }
    };
    walk(dashboard.panels);
  }
  return out;
}

interface RuleFile {
  groups: { name: string; rules: { record?: string; alert?: string; expr: string }[] }[];
}

export function ruleQueries(): { queries: Query[]; recorded: string[] } {
  const rules = parse(readFileSync(RULES_FILE, 'utf8')) as RuleFile;
  const queries: Query[] = [];
  const recorded: string[] = [];
  for (const g of rules.groups) {
    for (const r of g.rules) {
      if (r.record) recorded.push(r.record);
      queries.push({ where: `alerts.yml ${g.name}: ${r.alert ?? r.record}`, expr: r.expr });
    }
  }
  return { queries, recorded };
}

/** Grafana's variables replaced by values Prometheus accepts, to run a dashboard query as is. */
export function withGrafanaVariables(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$\{__rate_interval\}/g, '1m').replace(/\$(job|instance)\b/g, '.*');
}
