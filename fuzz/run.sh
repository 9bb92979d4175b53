#!/usr/bin/env bash
# Builds every cargo-fuzz target (release, with debug assertions) and runs each for a bounded
# time on a temporary copy of its checked-in corpus (the repository is not modified), then
# prints executions per target and in total. Exits non-zero if any target crashed, leaked,
# timed out or ran out of memory; the crashing inputs are copied to fuzz/artifacts/<target>/
# (gitignored) — move one to fuzz/regressions/<target>/ to keep it.
#
# Usage: fuzz/run.sh [SECONDS_PER_TARGET=30] [TARGET...]
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
secs="${1:-30}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Build once, then run the binaries directly (`cargo fuzz run` would rebuild per target and
# could pick up a half-edited tree between targets).
cargo +nightly fuzz build || exit 2
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bindir="$here/target/$triple/release"

work="$(mktemp -d "${TMPDIR:-/tmp}/ualink-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

total=0
failed=()
printf '%-18s %12s %8s %s\n' target executions exec/s result
for t in "${targets[@]}"; do
    corpus="$work/corpus/$t"
    mkdir -p "$corpus" "$work/artifacts/$t"
    [ -d "corpus/$t" ] && cp -r "corpus/$t/." "$corpus/"
    # Regressions are replayed first: a fixed crash must stay fixed.
    [ -d "regressions/$t" ] && cp -r "regressions/$t/." "$corpus/"
    log="$work/$t.log"
    "$bindir/$t" "$corpus" \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1
    rc=$?
    execs="$(grep -a 'stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n1)"
    rate="$(grep -a 'stat::average_exec_per_sec' "$log" | awk '{print $2}' | tail -n1)"
    execs="${execs:-0}"
    total=$((total + execs))
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        result="FAILED (rc $rc)"
        failed+=("$t")
        mkdir -p "artifacts/$t"
        cp -r "$work/artifacts/$t/." "artifacts/$t/" 2>/dev/null || true
        cp "$log" "artifacts/$t/run.log"
        grep -a -m1 -E '^(==[0-9]+==ERROR|thread .* panicked)' -A6 "$log" | sed 's/^/    /'
    fi
    printf '%-18s %12s %8s %s\n' "$t" "$execs" "${rate:-0}" "$result"
done
echo "total executions: $total across ${#targets[@]} targets, ${secs}s each"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]} (inputs and logs in fuzz/artifacts/)"
    exit 1
fi
echo "no crashes"
