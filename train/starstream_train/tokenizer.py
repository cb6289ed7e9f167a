"""The STAR tokenizer: WordPiece trained on rendered case text with the Python `tokenizers` library.

Settings chosen so that the JavaScript port the server uses (@huggingface/tokenizers) reads the same ids:
lowercase normalizer, BERT pre-tokenizer (whitespace, then punctuation; Unicode-aware on both sides, unlike
the `Whitespace` pre-tokenizer whose `\\w` is ASCII-only in JavaScript), WordPiece with `##` continuations.
The prompt markers are special tokens, so no text can be split into them.
"""
from __future__ import annotations

from typing import Iterable

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
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return tok


def segment_ids(tok: Tokenizer):
    """text -> ids without special tokens, the function CaseEncoder takes."""
    return lambda text: tok.encode(text, add_special_tokens=False).ids
