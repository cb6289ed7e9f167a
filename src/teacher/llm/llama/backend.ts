import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  getLlama,
  LlamaChat,
  LlamaLogLevel,
  type ChatHistoryItem,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaGrammar,
  type LlamaModel,
} from 'node-llama-cpp';
import { BadInputError, errorMessage, FatalError, StarstreamError } from '../../../errors/index.ts';
import type { Logger } from '../../../logging/logger.ts';
import { InFlightRequests, requestDeadline } from '../deadline.ts';
import {
  LLM_ERROR_CODES,
  type ChatMessage,
  type Completion,
  type CompletionRequest,
  type JsonSchema,
  type LanguageModel,
} from '../port.ts';
import { Slots } from './slots.ts';

/**
 * The embedded teacher backend: a local GGUF file run in-process by llama.cpp through node-llama-cpp.
 *
 * - JSON answers are grammar-constrained: the request's JSON Schema becomes a GBNF grammar
 *   (`llama.createGrammarForJsonSchema`), so the model cannot produce anything else (it can still be cut at
 *   `maxTokens`: `finishReason: 'length'`). Grammars are cached per schema.
 * - Concurrency: one context with `sequences` sequences; each sequence is a slot that serves one request at a
 *   time (a sequence is one KV cache, and two generations on it would corrupt each other's state). Requests
 *   beyond the slots wait in FIFO order; the wait counts against their timeout and their signal. With one
 *   sequence (the default) requests are simply serialized. A slot keeps its KV cache between requests, so a
 *   request that shares a prefix with the previous one (the same system prompt) skips re-evaluating it.
 * - Tokens: `promptTokens` is the length of the whole rendered prompt (chat template included), counted before
 *   generation and checked against the context size (`LLM_PROMPT_TOO_LONG` instead of silently dropping
 *   history); `completionTokens` is what the sequence generated.
 * - CPU only: package.json's overrides leave node-llama-cpp's CUDA and Vulkan binary packages out of `npm ci`
 *   (several hundred MB). GPU hosts serve the teacher through the OpenAI-compatible backend (vLLM, llama.cpp's
 *   llama-server) instead.
 *
 * This module is loaded only by `createLanguageModel` when the llama backend is chosen (a dynamic import), so
 * the pipeline never loads node-llama-cpp's native addon.
 */

export interface LlamaBackendOptions {
  /** The GGUF file. */
  readonly modelPath: string;
  /** Tokens of KV cache per sequence: prompt plus answer must fit. */
  readonly contextSize: number;
  /** Parallel requests (context sequences), each with `contextSize` tokens of KV cache. */
  readonly sequences: number;
  /** CPU threads for evaluation; 0 = all cores. */
  readonly threads: number;
  /** Per-request limit, queueing included, ms. */
  readonly timeoutMs: number;
  /** Used when a request has no `temperature`. */
  readonly temperature: number;
  readonly logger: Logger;
}

interface Slot {
  readonly sequence: LlamaContextSequence;
  readonly chat: LlamaChat;
}

const GRAMMAR_CACHE_SIZE = 64;

export async function openLlamaModel(options: LlamaBackendOptions): Promise<LanguageModel> {
  const { modelPath, logger } = options;
  if (!existsSync(modelPath)) {
    throw new FatalError(
      LLM_ERROR_CODES.modelMissing,
      `teacher.llm: no GGUF file at ${modelPath}; \`npm run teacher:model\` fetches the default model`,
    );
  }
  const started = performance.now();
  let llama: Llama | undefined;
  let model: LlamaModel | undefined;
  try {
    llama = await getLlama({
      gpu: false,
      build: 'never',
      progressLogs: false,
      logLevel: llamaLogLevel(logger.level),
      logger: (level, message) => logLlama(logger, level, message),
    });
    model = await llama.loadModel({ modelPath, gpuLayers: 0 });
    const context = await model.createContext({
      contextSize: options.contextSize,
      sequences: options.sequences,
      threads: options.threads,
    });
    const slots: Slot[] = [];
    for (let i = 0; i < options.sequences; i++) {
      const sequence = context.getSequence();
      slots.push({ sequence, chat: new LlamaChat({ contextSequence: sequence }) });
    }
    logger.info(
      {
        modelPath,
        contextSize: context.contextSize,
        sequences: options.sequences,
        threads: context.currentThreads,
        chatWrapper: slots[0]?.chat.chatWrapper.wrapperName,
        loadMs: Math.round(performance.now() - started),
      },
      'teacher llm: embedded model loaded',
    );
    return new LlamaLanguageModel(options, llama, model, context, slots);
  } catch (cause) {
    // Release what was loaded before the failure; a failure to release is logged, the load error is thrown.
    await model?.dispose().catch((err: unknown) => logger.warn({ err }, 'teacher llm: model dispose failed'));
    await llama?.dispose().catch((err: unknown) => logger.warn({ err }, 'teacher llm: llama dispose failed'));
    throw new FatalError(
      LLM_ERROR_CODES.modelLoad,
      `teacher.llm: cannot load ${modelPath}: ${errorMessage(cause)}`,
      {
        cause,
      },
    );
  }
}

class LlamaLanguageModel implements LanguageModel {
  readonly backend = 'llama';
  readonly model: string;
  private readonly slots: Slots<Slot>;
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  private readonly closing = new AbortController();
  private readonly inFlight = new InFlightRequests();
  private closed: Promise<void> | null = null;

  constructor(
    private readonly options: LlamaBackendOptions,
    private readonly llama: Llama,
    private readonly llamaModel: LlamaModel,
    private readonly context: LlamaContext,
    slots: readonly Slot[],
  ) {
    this.model = basename(options.modelPath).replace(/\.gguf$/i, '');
    this.slots = new Slots(slots);
  }

  complete(request: CompletionRequest): Promise<Completion> {
    return this.inFlight.track(this.run(request));
  }

  private async run(request: CompletionRequest): Promise<Completion> {
    const started = performance.now();
    if (this.closed)
      throw new FatalError(LLM_ERROR_CODES.closed, 'llama completion: the language model was closed');
    validateRequest(request);
    const deadline = requestDeadline({
      caller: request.signal,
      timeoutMs: this.options.timeoutMs,
      closing: this.closing.signal,
    });
    try {
      const grammar = await this.grammarFor(request.schema, request.schemaName);
      let slot: Slot;
      try {
        slot = await this.slots.acquire(deadline.signal);
      } catch (err) {
        // Rejected with the signal's reason (deadline) or close()'s error (slots closed).
        if (deadline.cause() !== null) throw deadline.error('llama completion (waiting for a sequence)');
        throw err;
      }
      try {
        const history = toChatHistory(request.messages);
        const promptTokens = slot.chat.chatWrapper
          .generateContextState({ chatHistory: history })
          .contextText.tokenize(this.llamaModel.tokenizer).length;
        if (promptTokens + request.maxTokens > this.context.contextSize) {
          throw new BadInputError(
            LLM_ERROR_CODES.promptTooLong,
            `llama completion: ${promptTokens} prompt tokens + maxTokens ${request.maxTokens} exceed the context ` +
              `size ${this.context.contextSize} (teacher.llm.contextSize)`,
          );
        }
        const outputBefore = slot.sequence.tokenMeter.usedOutputTokens;
        const response = await slot.chat.generateResponse(history, {
          grammar,
          maxTokens: request.maxTokens,
          temperature: request.temperature ?? this.options.temperature,
          signal: deadline.signal,
          stopOnAbortSignal: false,
        });
        return {
          text: response.response,
          promptTokens,
          completionTokens: slot.sequence.tokenMeter.usedOutputTokens - outputBefore,
          ms: Math.round(performance.now() - started),
          finishReason: response.metadata.stopReason === 'maxTokens' ? 'length' : 'stop',
        };
      } finally {
        this.slots.release(slot);
      }
    } catch (err) {
      // An abort surfaces as the signal's reason, which may itself be a StarstreamError (the caller's own, or
      // close()'s): the cause decides the error, not the reason's class.
      if (deadline.signal.aborted && err === deadline.signal.reason) throw deadline.error('llama completion');
      if (err instanceof StarstreamError) throw err;
      if (deadline.cause() !== null) throw deadline.error('llama completion');
      throw new FatalError(LLM_ERROR_CODES.failed, `llama completion failed: ${errorMessage(err)}`, {
        cause: err,
      });
    } finally {
      deadline.dispose();
    }
  }

  private grammarFor(schema: JsonSchema, schemaName: string): Promise<LlamaGrammar> {
    const key = JSON.stringify(schema);
    let grammar = this.grammars.get(key);
    if (!grammar) {
      grammar = this.llama
        // The port's schema subset is what GBNF JSON schemas accept; the cast only drops the readonly record type.
        .createGrammarForJsonSchema(schema as Parameters<Llama['createGrammarForJsonSchema']>[0])
        .catch((cause: unknown) => {
          this.grammars.delete(key);
          throw new BadInputError(
            LLM_ERROR_CODES.schemaUnsupported,
            `llama completion: schema ${schemaName} cannot become a grammar: ${errorMessage(cause)}`,
            { cause },
          );
        });
      if (this.grammars.size >= GRAMMAR_CACHE_SIZE) {
        const oldest = this.grammars.keys().next().value;
        if (oldest !== undefined) this.grammars.delete(oldest);
      }
      this.grammars.set(key, grammar);
    }
    return grammar;
  }

  /** Aborts requests in flight (they reject with `LLM_CLOSED`), waits for them, then frees the model. */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    const reason = new FatalError(LLM_ERROR_CODES.closed, 'llama completion: the language model was closed');
    this.closing.abort(reason);
    this.slots.close(reason);
    await this.inFlight.settled();
    await this.context.dispose();
    await this.llamaModel.dispose();
    await this.llama.dispose();
  }
}

function validateRequest(request: CompletionRequest): void {
  const bad = (what: string): never => {
    throw new BadInputError(LLM_ERROR_CODES.badRequest, `llama completion: ${what}`);
  };
  if (request.messages.length === 0) bad('no messages');
  if (!Number.isInteger(request.maxTokens) || request.maxTokens <= 0) bad(`maxTokens ${request.maxTokens}`);
  const t = request.temperature;
  if (t !== undefined && !(t >= 0)) bad(`temperature ${t}`);
}

/**
 * node-llama-cpp's chat history: the chat wrapper (from the GGUF's template; Gemma folds the system text into
 * the first user turn) renders it. An empty model turn at the end is the one the model writes; a conversation
 * that already ends with an assistant message has that message continued.
 */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = messages.map((m): ChatHistoryItem => {
    switch (m.role) {
      case 'system':
        return { type: 'system', text: m.content };
      case 'user':
        return { type: 'user', text: m.content };
      case 'assistant':
        return { type: 'model', response: [m.content] };
    }
  });
  if (history[history.length - 1]?.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}

function llamaLogLevel(pinoLevel: string): LlamaLogLevel {
  if (pinoLevel === 'silent') return LlamaLogLevel.disabled;
  if (pinoLevel === 'debug' || pinoLevel === 'trace') return LlamaLogLevel.debug;
  return LlamaLogLevel.warn;
}

function logLlama(logger: Logger, level: LlamaLogLevel, message: string): void {
  const text = message.trim();
  if (!text) return;
  switch (level) {
    case LlamaLogLevel.fatal:
    case LlamaLogLevel.error:
      logger.error({ llama: text }, 'llama.cpp');
      return;
    case LlamaLogLevel.warn:
      logger.warn({ llama: text }, 'llama.cpp');
      return;
    default:
      logger.debug({ llama: text }, 'llama.cpp');
  }
}
