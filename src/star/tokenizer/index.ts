import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { StarModelError } from '../registry/errors.ts';

/**
 * The STAR tokenizer: a `tokenizer.json` trained by the Python `tokenizers` library (WordPiece, lowercase,
 * BERT pre-tokenizer; see `train/starstream_train/tokenizer.py`), read by `@huggingface/tokenizers`, the
 * JavaScript port of the same library. `test/fixtures/prompt-vectors.jsonl` proves the two give the same ids.
 *
 * Segments are tokenized one at a time and cached: in a stream the same history lines, candidate lines and
 * many sentences come back over and over, so most lookups skip the tokenizer entirely.
 */

/** Tokens every STAR tokenizer must have. */
export const REQUIRED_TOKENS = { pad: '[PAD]', unk: '[UNK]', cls: '[CLS]', sep: '[SEP]' } as const;

export interface StarTokenizerOptions {
  /** Segments kept in the cache; the oldest is evicted first. @default 50000 */
  readonly cacheEntries?: number;
}

export class StarTokenizer {
  readonly padId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly vocabSize: number;
  private readonly cache = new Map<string, readonly number[]>();
  private readonly cacheEntries: number;

  private constructor(
    private readonly tokenizer: Tokenizer,
    options: StarTokenizerOptions,
  ) {
    const id = (token: string): number => {
      const value = tokenizer.token_to_id(token);
      if (value === undefined) throw new StarModelError('MODEL_INVALID', `tokenizer.json has no ${token} token`);
      return value;
    };
    this.padId = id(REQUIRED_TOKENS.pad);
    id(REQUIRED_TOKENS.unk);
    this.clsId = id(REQUIRED_TOKENS.cls);
    this.sepId = id(REQUIRED_TOKENS.sep);
    this.vocabSize = tokenizer.get_vocab(true).size;
    this.cacheEntries = options.cacheEntries ?? 50_000;
  }

  /** Reads `tokenizer.json`; an unreadable or unsupported file is `StarModelError` `MODEL_INVALID`. */
  static fromFile(path: string, options: StarTokenizerOptions = {}): StarTokenizer {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (cause) {
      throw new StarModelError('MODEL_INVALID', `cannot read ${path}: ${(cause as Error).message}`, { cause });
    }
    return StarTokenizer.fromJson(json, path, options);
  }

  static fromJson(json: unknown, source = 'tokenizer.json', options: StarTokenizerOptions = {}): StarTokenizer {
    if (typeof json !== 'object' || json === null || !('model' in json)) {
      throw new StarModelError('MODEL_INVALID', `${source} is not a tokenizers JSON file (no "model")`);
    }
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(json, {});
    } catch (cause) {
      throw new StarModelError('MODEL_INVALID', `${source}: ${(cause as Error).message}`, { cause });
    }
    return new StarTokenizer(tokenizer, options);
  }

  /** Ids of one segment, without special tokens. The returned array is shared: do not change it. */
  ids(text: string): readonly number[] {
    const hit = this.cache.get(text);
    if (hit) return hit;
    const ids = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    if (this.cache.size >= this.cacheEntries) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(text, ids);
    return ids;
  }

  /** Ids of a whole text, uncached (tests and tools). */
  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  tokens(text: string): string[] {
    return this.tokenizer.tokenize(text, { add_special_tokens: false });
  }
}
