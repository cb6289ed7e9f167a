"""The STAR tokenizer: WordPiece trained on rendered case text with the Python `tokenizers` library.

Settings chosen so that the JavaScript port the server uses (@huggingface/tokenizers) reads the same ids:
lowercase normalizer, BERT pre-tokenizer (whitespace, then punctuation; Unicode-aware on both sides, unlike
the `Whitespace` pre-tokenizer whose `\\w` is ASCII-only in JavaScript), WordPiece with `##` continuations.
The prompt markers are special tokens, so no text can be split into them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "<cand>", "<ev>", "<user>", "<hist>"]


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
        continuing_subword_prefix="##",
    )
    tok.train_from_iterator(texts, trainer)
    return canonical(tok.get_vocab())


def canonical(vocab: dict[str, int]) -> Tokenizer:
    """The tokenizer for a token set with ids in a fixed order: special tokens first, then by string.

    The WordPiece trainer learns the same tokens on every run but numbers them in hash-map order, which
    differs between processes; renumbering makes training reproducible (WordPiece ignores id order).
    """
    rest = sorted(t for t in vocab if t not in SPECIAL_TOKENS)
    ids = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *rest])}
    tok = Tokenizer(models.WordPiece(vocab=ids, unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens(SPECIAL_TOKENS)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])]
    )
    return tok


def segment_ids(tok: Tokenizer) -> Callable[[str], list[int]]:
    """text -> ids without special tokens, the function CaseEncoder takes."""
    return lambda text: tok.encode(text, add_special_tokens=False).ids


def special_id(tok: Tokenizer, token: str) -> int:
    """The id of a special token (`[CLS]`, `[SEP]`, ...); a tokenizer without it is not a STAR tokenizer."""
    found = tok.token_to_id(token)
    if found is None:
        raise ValueError(f"the tokenizer has no {token} token (a STAR tokenizer has all of {SPECIAL_TOKENS})")
    return found
