import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CstTemplates } from '../../cst/index.ts';
import { errorCode, errorMessage } from '../../errors/index.ts';
import type { Logger } from '../../logging/logger.ts';
import { OnnxStarScorer, type ExecutionProvider, type OnnxScorerOptions } from '../onnx/scorer.ts';
import type { Scorer } from '../port.ts';
import { featureWidth } from '../prompt/features.ts';
import type { PromptSpec } from '../prompt/spec.ts';
import { StarModelError } from './errors.ts';
import { checkTemplates, MODEL_FILES, modelFiles, readManifest } from './manifest.ts';
import { checkParity, checkParitySentences, readParity, type ParityReport } from './parity.ts';

/**
 * The STAR model registry: a directory of model versions and a `CURRENT` file naming the one to serve.
 *
 * ```
 * models/
 *   CURRENT                 "2026-11-25.3\n"
 *   2026-11-25.2/           star.onnx tokenizer.json star.json parity.jsonl
 *   2026-11-25.3/           …
 * ```
 *
 * Every instance polls `CURRENT`. A newly named version is loaded beside the serving one, checked (files,
 * manifest, template versions, the CST sentences of its parity cases, onnxruntime load, parity within
 * tolerance) and only then swapped in: one reference assignment, so a case always gets a whole model. The
 * replaced model keeps its session for `retireGraceMs` so that a request that took it just before the swap
 * still completes, then is closed.
 * A model that fails any check is refused: logged, reported through `onRefused`, remembered (not retried
 * until its files or `CURRENT` change), and the serving model stays. Publish a version by writing its
 * directory completely first, then replacing `CURRENT` (write a temp file and rename it).
 *
 * `dir` may also be a single model directory (it holds `star.json`): served as is, never reloaded.
 */

export interface StarRegistryOptions {
  readonly dir: string;
  readonly spec: PromptSpec;
  /** `version` of the CST templates the evidence stage renders with. */
  readonly cstTemplateVersion: string;
  /**
   * The templates themselves (of `cstTemplateVersion`): when given, every sentence of the model's parity cases
   * must be one they render (`checkParitySentences`), not only the manifest's label agree.
   */
  readonly cstTemplates?: CstTemplates;
  /** How often `CURRENT` is read, ms; 0 = never (only `refresh()`). */
  readonly pollMs: number;
  /** Largest |score difference| from the trainer's parity scores. */
  readonly parityTolerance: number;
  /** How long a replaced model still serves requests that took it before the swap, ms. */
  readonly retireGraceMs: number;
  readonly scorer?: OnnxScorerOptions;
  readonly logger: Logger;
  /** A candidate model was refused; `code` is a `StarModelCode` (or `UNCLASSIFIED`). For a counter. */
  readonly onRefused?: (code: string, version: string) => void;
  /** A model started serving (also the first one). */
  readonly onSwapped?: (version: string, executionProvider: ExecutionProvider) => void;
}

/** What the pipeline holds: `current()` once per case, so a swap never changes the model of a case mid-way. */
export interface ScorerHandle {
  current(): Scorer;
  /** `modelVersion` of the serving model. */
  readonly version: string;
  /** Provider of the serving model; `null` for scorers that are not ONNX (the baseline). */
  readonly executionProvider: ExecutionProvider | null;
  close(): Promise<void>;
}

export type RefreshResult =
  | { readonly status: 'unchanged'; readonly version: string }
  | { readonly status: 'swapped'; readonly version: string; readonly parity: ParityReport }
  | { readonly status: 'refused'; readonly version: string; readonly code: string; readonly message: string };

/** A handle that always serves one scorer, e.g. the baseline when no STAR model is configured. */
export function staticScorerHandle(scorer: Scorer): ScorerHandle {
  return { current: () => scorer, version: scorer.modelVersion, executionProvider: null, close: () => scorer.close() };
}

/** Loads one model directory and runs every check; the caller owns the returned scorer. */
export async function loadVerifiedModel(
  dir: string,
  options: Pick<StarRegistryOptions, 'spec' | 'cstTemplateVersion' | 'cstTemplates' | 'parityTolerance' | 'scorer'>,
): Promise<{ scorer: OnnxStarScorer; parity: ParityReport }> {
  const manifest = readManifest(dir);
  checkTemplates(manifest, options.spec.version, options.cstTemplateVersion, featureWidth(options.spec));
  const parityCases = readParity(modelFiles(dir).parity);
  if (options.cstTemplates) checkParitySentences(parityCases, options.cstTemplates, manifest.version);
  const scorer = await OnnxStarScorer.load(dir, manifest, options.spec, options.scorer);
  try {
    const parity = await checkParity(scorer, parityCases, options.parityTolerance);
    return { scorer, parity };
  } catch (err) {
    await scorer.close();
    throw err;
  }
}

export class StarRegistry implements ScorerHandle {
  private active!: OnnxStarScorer;
  private activeKey = '';
  private readonly refused = new Map<string, string>();
  private readonly retiring = new Set<{ scorer: OnnxStarScorer; timer: NodeJS.Timeout }>();
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<RefreshResult> | null = null;
  private closed = false;
  private readonly log: Logger;

  private constructor(private readonly options: StarRegistryOptions) {
    this.log = options.logger.child({ component: 'star.registry' });
  }

  /**
   * Opens the registry and loads the model `CURRENT` names (or the single model in `dir`). A model that fails
   * its checks here is thrown (`StarModelError`): there is nothing older to fall back on.
   */
  static async open(options: StarRegistryOptions): Promise<StarRegistry> {
    const registry = new StarRegistry(options);
    const result = await registry.refresh();
    if (result.status === 'refused') throw new StarModelError(result.code as StarModelError['code'], result.message);
    if (options.pollMs > 0 && !registry.isSingleModel()) {
      registry.timer = setInterval(() => void registry.refresh(), options.pollMs);
      registry.timer.unref();
    }
    return registry;
  }

  current(): Scorer {
    return this.active;
  }

  get version(): string {
    return this.active.modelVersion;
  }

  get executionProvider(): ExecutionProvider {
    return this.active.executionProvider;
  }

  /** Reads `CURRENT` now and swaps if it names a new, valid model. Concurrent calls share one check. */
  refresh(): Promise<RefreshResult> {
    this.refreshing ??= this.check().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.refreshing?.catch(() => undefined);
    const closing = [...this.retiring].map(({ scorer, timer }) => {
      clearTimeout(timer);
      return scorer.close();
    });
    this.retiring.clear();
    // `active` is unset only when the first load failed, and then `open` threw before anyone could close.
    await Promise.all([...closing, this.active?.close()]);
  }

  private isSingleModel(): boolean {
    return existsSync(join(this.options.dir, MODEL_FILES.manifest));
  }

  private async check(): Promise<RefreshResult> {
    let version = '(unknown)';
    let key = '';
    try {
      const target = this.target();
      version = target.version;
      key = target.key;
      if (this.active && key === this.activeKey) return { status: 'unchanged', version: this.active.modelVersion };
      const known = this.refused.get(key);
      if (known !== undefined) return { status: 'refused', version, code: known, message: 'refused before; files unchanged' };
      const { scorer, parity } = await loadVerifiedModel(target.dir, this.options);
      if (this.closed) {
        await scorer.close();
        return { status: 'unchanged', version };
      }
      this.swap(scorer, key);
      this.log.info({ model: scorer.modelVersion, executionProvider: scorer.executionProvider, parity }, 'STAR model serving');
      return { status: 'swapped', version: scorer.modelVersion, parity };
    } catch (err) {
      const code = errorCode(err);
      const message = errorMessage(err);
      if (key) this.refused.set(key, code);
      this.log.error({ code, version, err: message, serving: this.active?.modelVersion ?? null }, 'STAR model refused');
      this.options.onRefused?.(code, version);
      return { status: 'refused', version, code, message };
    }
  }

  private swap(next: OnnxStarScorer, key: string): void {
    const previous = this.active;
    this.active = next;
    this.activeKey = key;
    this.options.onSwapped?.(next.modelVersion, next.executionProvider);
    if (!previous) return;
    const entry = {
      scorer: previous,
      timer: setTimeout(() => {
        this.retiring.delete(entry);
        void previous.close();
      }, this.options.retireGraceMs),
    };
    entry.timer.unref();
    this.retiring.add(entry);
  }

  /** The model directory to serve and a key that changes whenever it or its files change. */
  private target(): { dir: string; version: string; key: string } {
    const root = this.options.dir;
    if (this.isSingleModel()) return { dir: root, version: root, key: fileKey(root) };
    const pointer = join(root, 'CURRENT');
    if (!existsSync(pointer)) {
      throw new StarModelError('MODEL_REGISTRY_INVALID', `${root} holds neither star.json (a model) nor CURRENT (a registry)`);
    }
    const version = readFileSync(pointer, 'utf8').trim();
    if (!/^[A-Za-z0-9._-]+$/.test(version) || version === '.' || version === '..') {
      throw new StarModelError('MODEL_REGISTRY_INVALID', `${pointer} must name a version directory, got ${JSON.stringify(version.slice(0, 80))}`);
    }
    const dir = join(root, version);
    return { dir, version, key: fileKey(dir) };
  }
}

/** Directory plus size and mtime of each model file: a rewritten model is a new candidate. */
function fileKey(dir: string): string {
  const parts = [dir];
  for (const name of Object.values(MODEL_FILES)) {
    const path = join(dir, name);
    if (!existsSync(path)) {
      parts.push(`${name}:absent`);
      continue;
    }
    const s = statSync(path);
    parts.push(`${name}:${s.size}:${s.mtimeMs}`);
  }
  return parts.join('|');
}
