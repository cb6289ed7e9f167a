#!/usr/bin/env bash
# Smoke check of the compiled CLI (run after `npm run build`): `starstream --help` must answer from dist/ (not
# through tsx) with exit 0, and a small demo must run end to end from dist/, which reads every runtime asset the
# way an installed copy does (Avro schemas and templates under schemas/, the HNSW build worker's compiled entry).
# Prints the timings; asserts no speed (CI machines are shared), only that dist/ is what ran.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "cli smoke: $*" >&2; exit 1; }
[ -f dist/cli/index.js ] || fail "dist/cli/index.js is missing: run npm run build first"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
now_ms() { date +%s%3N; }

t0=$(now_ms)
rc=0
node bin/starstream.js --help >"$work/help.out" 2>"$work/help.err" || rc=$?
help_ms=$(( $(now_ms) - t0 ))
if grep -q 'through tsx' "$work/help.err"; then fail "bin/starstream.js ran src/ through tsx: $(cat "$work/help.err")"; fi
grep -q 'usage' "$work/help.out" || fail "--help printed no usage (exit $rc): $(head -c 600 "$work/help.err")"
[ "$rc" = 0 ] || fail "--help exited $rc"
echo "cli smoke: starstream --help answered from dist/ in ${help_ms} ms (node $(node --version))"

t0=$(now_ms)
rc=0
# A low exact-search bound, so the embedded store builds its HNSW graph in the worker thread from dist/ too.
STARSTREAM_STORE__EMBEDDED__EXACT_SEARCH_BELOW=100 STARSTREAM_STORE__EMBEDDED__REBUILD_DIRTY_MIN=50 \
  timeout 300 node bin/starstream.js demo --events 3000 --users 300 --items 600 --seed 7 --out "$work/recs.jsonl" \
  >"$work/demo.out" 2>"$work/demo.err" || rc=$?
demo_ms=$(( $(now_ms) - t0 ))
if grep -q 'through tsx' "$work/demo.err"; then fail "the demo ran src/ through tsx"; fi
if grep -h -E 'MODULE_NOT_FOUND|ENOENT|STORE_INDEX_REFRESH_FAILED' "$work/demo.out" "$work/demo.err" >&2; then
  fail "the demo from dist/ missed a runtime file (above)"
fi
if [ "$rc" != 0 ]; then
  tail -n 30 "$work/demo.out" "$work/demo.err" >&2
  fail "demo from dist/ exited $rc"
fi
[ -s "$work/recs.jsonl" ] || fail "the demo from dist/ wrote no recommendations"
echo "cli smoke: demo of 3000 events from dist/ in ${demo_ms} ms, $(wc -l <"$work/recs.jsonl") recommendations"
