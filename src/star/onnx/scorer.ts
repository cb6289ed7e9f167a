import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ScoringCase } from '../../domain/evidence.ts';
import { FatalError } from '../../errors/index.ts';
import type { Logger } from '../../logging/logger.ts';
import type { Scorer } from '../port.ts';
import { CaseEncoder, type EncodedBatch } from '../prompt/encode.ts';
import type { PromptSpec } from '../prompt/spec.ts';
import { StarModelError } from '../registry/errors.ts';
import { modelFiles, type StarManifest } from '../registry/manifest.ts';
import { StarTokenizer } from '../tokenizer/index.ts';
import { MicroBatcher } from './batcher.ts';

/**
 * STAR on onnxruntime-node. One `InferenceSession` per model, reused for every batch; concurrent `score()`
 * calls are merged by a `MicroBatcher` into one forward pass (rows = candidates of all merged lists, padded to
 * the longest row). The CUDA execution provider is used when asked for and loadable, else the CPU one; which
 * one runs is logged at load and readable from `executionProvider` (exported as a metric by the caller).
 *
 * GPU hosts: onnxruntime-node ships its CUDA provider only when installed with
 * `npm install --onnxruntime-node-install=cuda12` (the repository's `.npmrc` skips it for CPU hosts), plus
 * CUDA 12 and cuDNN 9 on the library path. Without them, asking for `cuda` logs why and serves on the CPU.
 */

export const EXECUTION_PROVIDERS = ['cpu', 'cuda'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export interface OnnxScorerOptions {
  /** Asked-for provider; `cuda` falls back to `cpu` when it cannot load. @default 'cpu' */
  readonly executionProvider?: ExecutionProvider;
  /** Candidates per forward pass at which a micro-batch closes. @default 512 */
  readonly maxBatchCandidates?: number;
  /** Longest a list waits for others to share its forward pass, ms. @default 2 */
  readonly maxWaitMs?: number;
  /** Threads of one operator (CPU provider); 0 = onnxruntime's default (all cores). @default 0 */
  readonly intraOpThreads?: number;
  readonly logger?: Logger;
  /** Told after every forward pass: lists merged, rows (candidates) and seconds (encode + run). For metrics. */
  readonly onInference?: (stats: InferenceStats) => void;
}

export interface InferenceStats {
  readonly lists: number;
  readonly rows: number;
  readonly seconds: number;
  readonly executionProvider: ExecutionProvider;
}

export class OnnxStarScorer implements Scorer {
  readonly modelVersion: string;
  readonly readsSentences = true;
  private readonly batcher: MicroBatcher<ScoringCase, Float32Array>;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly manifest: StarManifest,
    readonly encoder: CaseEncoder,
    private readonly provider: ExecutionProvider,
    private readonly options: OnnxScorerOptions,
  ) {
    this.modelVersion = `${manifest.name}-${manifest.version}`;
    this.batcher = new MicroBatcher((cases) => this.scoreNow(cases), (c) => Math.max(1, c.candidates.length), {
      maxWeight: options.maxBatchCandidates ?? 512,
      maxWaitMs: options.maxWaitMs ?? 2,
    });
  }

  /**
   * Opens the model in `dir` (its manifest already read and checked). Throws `StarModelError`
   * `MODEL_LOAD_FAILED` when onnxruntime cannot open it or its inputs and outputs differ from the manifest.
   */
  static async load(dir: string, manifest: StarManifest, spec: PromptSpec, options: OnnxScorerOptions = {}): Promise<OnnxStarScorer> {
    const files = modelFiles(dir);
    const tokenizer = StarTokenizer.fromFile(files.tokenizer);
    const { session, provider } = await openSession(files.onnx, options);
    try {
      const expectedInputs = [manifest.inputNames.ids, manifest.inputNames.mask, manifest.inputNames.features].filter((n) => n !== undefined);
      const missing = expectedInputs.filter((n) => !session.inputNames.includes(n));
      if (missing.length > 0 || !session.outputNames.includes(manifest.outputName)) {
        throw new StarModelError(
          'MODEL_LOAD_FAILED',
          `${files.onnx}: inputs [${session.inputNames.join(', ')}] outputs [${session.outputNames.join(', ')}] do not match star.json ` +
            `(inputs [${expectedInputs.join(', ')}], output ${manifest.outputName})`,
        );
      }
    } catch (err) {
      await session.release();
      throw err;
    }
    options.logger?.info({ model: `${manifest.name}-${manifest.version}`, executionProvider: provider }, 'STAR model session opened');
    return new OnnxStarScorer(session, manifest, new CaseEncoder(spec, tokenizer, manifest.maxLength), provider, options);
  }

  /** The provider that actually runs this model. */
  get executionProvider(): ExecutionProvider {
    return this.provider;
  }

  /** Batches run so far by the micro-batcher (benchmarks). */
  get batchStats(): Readonly<{ batches: number; requests: number; items: number }> {
    return this.batcher.stats;
  }

  score(cases: readonly ScoringCase[]): Promise<Float32Array[]> {
    return this.batcher.submit(cases);
  }

  /** Scores `cases` in one forward pass of its own, bypassing the micro-batcher. */
  async scoreNow(cases: readonly ScoringCase[]): Promise<Float32Array[]> {
    const rows = cases.reduce((n, c) => n + c.candidates.length, 0);
    if (rows === 0) return cases.map(() => new Float32Array(0));
    const started = performance.now();
    const scores = await this.infer(this.encoder.encode(cases));
    this.options.onInference?.({ lists: cases.length, rows, seconds: (performance.now() - started) / 1000, executionProvider: this.provider });
    const out: Float32Array[] = [];
    let at = 0;
    for (const c of cases) {
      out.push(scores.slice(at, at + c.candidates.length));
      at += c.candidates.length;
    }
    return out;
  }

  /** Bare inference on an encoded batch: one score per row, "higher is better" already applied. */
  async infer(batch: EncodedBatch): Promise<Float32Array> {
    const names = this.manifest.inputNames;
    const feeds: Record<string, ort.Tensor> = {
      [names.ids]: new ort.Tensor('int64', batch.ids, [batch.rows, batch.length]),
      [names.mask]: new ort.Tensor('int64', batch.mask, [batch.rows, batch.length]),
    };
    if (names.features) feeds[names.features] = new ort.Tensor('float32', batch.features, [batch.rows, batch.width]);
    let output: ort.Tensor | undefined;
    try {
      output = (await this.session.run(feeds, [this.manifest.outputName]))[this.manifest.outputName];
    } catch (cause) {
      throw new FatalError('STAR_INFERENCE_FAILED', `model ${this.modelVersion}: ${(cause as Error).message}`, { cause });
    }
    if (!output || !(output.data instanceof Float32Array) || output.data.length !== batch.rows) {
      throw new FatalError('STAR_INFERENCE_FAILED', `model ${this.modelVersion}: expected ${batch.rows} float32 scores from ${this.manifest.outputName}`);
    }
    const scores = output.data;
    if (this.manifest.scoreReading === 'negated') for (let i = 0; i < scores.length; i++) scores[i] = -scores[i]!;
    return scores;
  }

  /** Runs what was submitted, then releases the session. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.batcher.close().then(() => this.session.release());
    return this.closing;
  }
}

async function openSession(
  path: string,
  options: OnnxScorerOptions,
): Promise<{ session: ort.InferenceSession; provider: ExecutionProvider }> {
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  };
  if (options.executionProvider === 'cuda' && !cudaProviderInstalled()) {
    options.logger?.warn(
      { code: 'STAR_CUDA_UNAVAILABLE' },
      'onnxruntime-node was installed without its CUDA provider (npm install --onnxruntime-node-install=cuda12); serving STAR on the CPU',
    );
  } else if (options.executionProvider === 'cuda') {
    try {
      return { session: await ort.InferenceSession.create(path, { ...base, executionProviders: ['cuda', 'cpu'] }), provider: 'cuda' };
    } catch (err) {
      options.logger?.warn({ code: 'STAR_CUDA_UNAVAILABLE', err: (err as Error).message.split('\n')[0] }, 'CUDA execution provider unavailable, serving STAR on the CPU');
    }
  }
  try {
    return { session: await ort.InferenceSession.create(path, { ...base, executionProviders: ['cpu'] }), provider: 'cpu' };
  } catch (cause) {
    throw new StarModelError('MODEL_LOAD_FAILED', `onnxruntime cannot open ${path}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Whether onnxruntime-node's CUDA provider library is installed beside its binding. Checked before asking for
 * it, because onnxruntime prints a native error for a missing provider library even when the caller recovers.
 */
export function cudaProviderInstalled(): boolean {
  try {
    const bin = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin');
    for (const napi of readdirSync(bin)) {
      if (existsSync(join(bin, napi, process.platform, process.arch, 'libonnxruntime_providers_cuda.so'))) return true;
    }
  } catch {
    // An unusual layout: let onnxruntime itself decide.
    return true;
  }
  return false;
}
