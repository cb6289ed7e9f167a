"""starstream_train: trains STAR, the compact scorer starstream serves, from case files.

Case files come from `starstream cases export` (src/cli/cases.ts); the model directory it writes is what
src/star/registry loads: star.onnx, tokenizer.json, star.json, parity.jsonl.
"""

__version__ = "0.1.0"
