#!/usr/bin/env bash
# Runs a test command several times while a CPU hog keeps every core busy, then once pinned to one core, and
# prints one pass/fail line per run and a summary. The suite must hold on a busy machine (issue 18): a test
# that fails here depends on the machine's speed, not on what the code does.
#
#   scripts/stress-tests.sh                                   npm test, 3 runs under the hog + 1 on one core
#   npm run test:stress -- -n 1 -- npm test -- test/eventlog   through npm: 1 run of one folder
#   scripts/stress-tests.sh -n 5 -- npm test -- test/util     another command, 5 runs
#   scripts/stress-tests.sh --no-single-core -- .ci/run
#
# Options: -n RUNS (default 3), --hogs N (default: all cores, `nproc`), --no-single-core, --log-dir DIR
# (default: a temporary directory; each run's output is kept there, the path is printed).
# The hog is stress-ng when installed (`stress-ng --cpu N`), else N busy shell loops. Exit status: 0 when
# every run passed, 1 otherwise, 2 for a usage error.
set -euo pipefail

# usage STATUS: the header above as help; on stdout for --help (exit 0), on stderr for a usage error (exit 2).
usage() {
  if [ "$1" = 0 ]; then sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; else sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; fi
  exit "$1"
}

runs=3
hogs=$(nproc)
single_core=1
log_dir=''
while [ $# -gt 0 ]; do
  case "$1" in
    -n) [ $# -ge 2 ] || usage 2; runs=$2; shift 2 ;;
    --hogs) [ $# -ge 2 ] || usage 2; hogs=$2; shift 2 ;;
    --no-single-core) single_core=0; shift ;;
    --log-dir) [ $# -ge 2 ] || usage 2; log_dir=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    -*) echo "stress-tests: unknown option $1" >&2; usage 2 ;;
    *) break ;;
  esac
done
case "$runs" in ''|*[!0-9]*) echo "stress-tests: -n wants a number, got '$runs'" >&2; exit 2 ;; esac
case "$hogs" in ''|*[!0-9]*) echo "stress-tests: --hogs wants a number, got '$hogs'" >&2; exit 2 ;; esac
[ $# -gt 0 ] || set -- npm test
if [ "$single_core" = 1 ] && ! command -v taskset >/dev/null; then
  echo "stress-tests: taskset not found (util-linux); use --no-single-core" >&2
  exit 2
fi
if [ -z "$log_dir" ]; then log_dir=$(mktemp -d "${TMPDIR:-/tmp}/stress-tests.XXXXXX"); fi
mkdir -p "$log_dir"

# The hog's own process group, so that stopping it stops every loop it started, and nothing else.
hog_pid=''
start_hog() {
  if command -v stress-ng >/dev/null; then
    setsid stress-ng --cpu "$hogs" --quiet >/dev/null 2>&1 &
  else
    setsid bash -c 'for _ in $(seq "$1"); do while :; do :; done & done; wait' hog "$hogs" >/dev/null 2>&1 &
  fi
  hog_pid=$!
}
stop_hog() {
  if [ -n "$hog_pid" ]; then
    kill -- "-$hog_pid" 2>/dev/null || true
    wait "$hog_pid" 2>/dev/null || true
    hog_pid=''
  fi
}
trap stop_hog EXIT
trap 'exit 130' INT TERM

results=()
failed=0
# run LABEL [PREFIX...]: runs the test command (after PREFIX, e.g. taskset) with its output in the log dir.
run() {
  local label=$1; shift
  local log="$log_dir/${label//[^A-Za-z0-9._-]/-}.log" started status
  started=$(date +%s)
  if "$@" "${cmd[@]}" >"$log" 2>&1; then status=pass; else status="FAIL (exit $?)"; failed=1; fi
  local line
  line=$(printf '%-22s %-14s %5ss  %s' "$label" "$status" "$(( $(date +%s) - started ))" "$log")
  results+=("$line")
  echo "$line"
}

cmd=("$@")
echo "stress-tests: '${cmd[*]}': $runs run(s) with $hogs busy core(s)$([ "$single_core" = 1 ] && echo ', then 1 on core 0'); logs in $log_dir"
start_hog
for i in $(seq "$runs"); do run "hog run $i/$runs"; done
stop_hog
# One core for the tests and nothing else: the scheduling a 1-CPU container gives.
if [ "$single_core" = 1 ]; then run 'taskset -c 0' taskset -c 0; fi

echo
echo "summary: ${cmd[*]}"
printf '  %s\n' "${results[@]}"
if [ "$failed" = 0 ]; then echo "stress-tests: all runs passed"; else echo "stress-tests: some runs FAILED"; fi
exit "$failed"
