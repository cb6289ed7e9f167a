"""starstream_train: trains STAR, the compact scorer starstream serves, from case files and the teacher's
labelled trajectories (stage 1 supervised, stage 2 GRPO; README "Distillation").

Case files come from `starstream cases export` (src/cli/cases.ts), trajectories from the teacher's dataset
export (src/teacher/dataset/); the model directory it writes is what
src/star/registry loads: star.onnx, tokenizer.json, star.json, parity.jsonl.
"""

__version__ = "0.1.0"
