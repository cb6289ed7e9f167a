#!/usr/bin/env bash
# Dependency audit: npm (production dependencies, high and critical advisories) and the Python trainer
# (pip-audit against the packages installed in train/.venv, or train/pyproject.toml when that is absent).
#
#   bash scripts/audit.sh              what `.ci/run` runs
#   AUDIT_STRICT=1 bash scripts/audit.sh   also fail when an audit could not run (no advisory service)
#
# Findings accepted after review go in scripts/audit-allowlist.txt (format there); expired entries no
# longer apply. Exit 1 when a finding is not allowlisted.
#
# Offline tolerance: an audit needs its advisory service (npm: the registry's bulk advisory endpoint; PyPI:
# the per-release JSON API). Where a mirror or proxy does not serve it, that audit is reported as NOT RUN, in
# capitals, and does not fail the build unless AUDIT_STRICT=1: a build must not break because a service is
# unreachable, and nobody may read "no findings" into it either. pip-audit itself is installed from PyPI
# into .cache/audit-venv (git-ignored) on first use, pinned below.
set -uo pipefail
cd "$(dirname "$0")/.."
PIP_AUDIT_SPEC="pip-audit==2.10.1"
ALLOWLIST="scripts/audit-allowlist.txt"
STRICT="${AUDIT_STRICT:-0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failed=0
not_run=()
say() { printf 'audit: %s\n' "$*"; }

# Active allowlist ids per ecosystem (entries past their date are dropped, and said so).
allowed() {
  local eco="$1" today
  today="$(date +%F)"
  [ -f "$ALLOWLIST" ] || return 0
  grep -Ev '^\s*(#|$)' "$ALLOWLIST" | while read -r e id until _; do
    [ "$e" = "$eco" ] || continue
    if [[ "$until" < "$today" ]]; then
      say "allowlist entry $e $id expired on $until: it no longer applies" >&2
      continue
    fi
    printf '%s\n' "$id"
  done
}

# ---- npm -----------------------------------------------------------------------------------------------
say "npm audit --omit=dev --audit-level=high"
npm audit --omit=dev --json >"$work/npm.json" 2>"$work/npm.err"
allowed npm >"$work/npm.allow"
python3 - "$work/npm.json" "$work/npm.allow" <<'PY'
import json, re, sys
try:
    report = json.load(open(sys.argv[1]))
except ValueError:
    report = {}
allow = set(open(sys.argv[2]).read().split())
if "vulnerabilities" not in report:
    why = report.get("message") or report.get("error", {}).get("summary") or "no report"
    print(f"audit: npm: NOT RUN: the advisory endpoint did not answer ({str(why)[:160]})")
    sys.exit(3)
bad = []
for name, v in report["vulnerabilities"].items():
    if v.get("severity") not in ("high", "critical"):
        continue
    ids = {name}
    for via in v.get("via", []):
        if isinstance(via, dict):
            m = re.search(r"GHSA-[\w-]+", via.get("url", ""))
            if m:
                ids.add(m.group(0))
    if ids & allow:
        print(f"audit: npm: {name} ({v['severity']}) allowlisted ({', '.join(sorted(ids & allow))})")
    else:
        bad.append(f"{name} ({v['severity']}; {', '.join(sorted(ids - {name})) or 'see npm audit'})")
total = report.get("metadata", {}).get("vulnerabilities", {})
print(f"audit: npm: {sum(total.values()) if total else 0} advisories in production dependencies, {len(bad)} high/critical not allowlisted")
for b in bad:
    print(f"audit: npm: FINDING {b}")
sys.exit(1 if bad else 0)
PY
case $? in
  0) ;;
  3) not_run+=("npm") ;;
  *) failed=1 ;;
esac

# ---- Python (train/) ----------------------------------------------------------------------------------
venv=".cache/audit-venv"
if [ ! -x "$venv/bin/pip-audit" ]; then
  say "installing $PIP_AUDIT_SPEC into $venv"
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check "$PIP_AUDIT_SPEC"; } >"$work/pip.err" 2>&1; then
    say "python: NOT RUN: could not install $PIP_AUDIT_SPEC ($(tail -1 "$work/pip.err"))"
    not_run+=("python")
  fi
fi
if [ -x "$venv/bin/pip-audit" ]; then
  ignore=()
  while read -r id; do ignore+=(--ignore-vuln "$id"); done < <(allowed pypi)
  if [ -x train/.venv/bin/pip ]; then
    # The packages actually installed (torch included, by version); the trainer itself is editable, skipped.
    train/.venv/bin/pip list --format=freeze --exclude-editable --disable-pip-version-check >"$work/requirements.txt" 2>/dev/null
    say "pip-audit: $(wc -l <"$work/requirements.txt") packages installed in train/.venv"
    target=(-r "$work/requirements.txt" --no-deps --disable-pip)
  else
    say "pip-audit: train/.venv is absent (bash train/install.sh): auditing train/pyproject.toml's dependencies"
    target=(train)
  fi
  "$venv/bin/pip-audit" "${target[@]}" "${ignore[@]}" --format json --progress-spinner off >"$work/pip.json" 2>"$work/pip.err"
  python3 - "$work/pip.json" "$work/pip.err" <<'PY'
import json, sys
try:
    report = json.load(open(sys.argv[1]))
except ValueError:
    err = open(sys.argv[2]).read().strip().splitlines()
    print(f"audit: python: NOT RUN: pip-audit gave no report ({(err[-1] if err else 'no output')[:200]})")
    sys.exit(3)
deps = report.get("dependencies", [])
audited = [d for d in deps if "skip_reason" not in d]
findings = [(d["name"], d["version"], v["id"], v.get("fix_versions", [])) for d in audited for v in d.get("vulns", [])]
print(f"audit: python: {len(audited)} of {len(deps)} packages audited, {len(findings)} findings not allowlisted")
for name, version, vid, fixes in findings:
    print(f"audit: python: FINDING {name} {version}: {vid} (fixed in {', '.join(fixes) or 'no release yet'})")
if findings:
    sys.exit(1)
if deps and not audited:
    reasons = {d["skip_reason"].split(":")[0] for d in deps}
    print(f"audit: python: NOT RUN: no package could be looked up in the advisory service ({'; '.join(sorted(reasons))[:200]})")
    sys.exit(3)
sys.exit(0)
PY
  case $? in
    0) ;;
    3) not_run+=("python") ;;
    *) failed=1 ;;
  esac
fi

# ---- verdict --------------------------------------------------------------------------------------------
if [ ${#not_run[@]} -gt 0 ]; then
  say "NOT RUN: ${not_run[*]} (advisory service unreachable from here; AUDIT_STRICT=1 makes this fail)"
  [ "$STRICT" = "1" ] && failed=1
fi
if [ "$failed" = "1" ]; then
  say "FAILED"
  exit 1
fi
say "ok"
