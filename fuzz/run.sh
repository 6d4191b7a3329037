#!/usr/bin/env bash
# Bounded fuzzing of every target (called by `make fuzz`).
#   FUZZ_SECONDS   seconds per target (default 180)
#   FUZZ_TARGETS   which targets (default: all, in the order below)
#   FUZZ_TARGET_DIR  cargo target dir (default target-fuzz/fuzz)
# Each target runs on fuzz/corpus/<target> (kept between runs, gitignored)
# seeded from the committed fuzz/seeds/<target>. A target stops at its first
# crash; the input is saved under fuzz/artifacts/<target>/ and belongs in
# tests/regressions/<target>/ (replayed by `cargo test`). Writes the summary
# to fuzz/RESULTS.md and exits non-zero when anything crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${FUZZ_SECONDS:-180}"
TARGETS="${FUZZ_TARGETS:-token config exempt_paths pem_key grpc_answer b64 header_pairs jwks access_token}"
TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target-fuzz/fuzz}"
CARGO_FUZZ=(cargo +nightly fuzz)
LOGS=fuzz/logs
mkdir -p "$LOGS"

max_len() {
    case "$1" in
        token | access_token) echo 17000 ;;  # MAX_TOKEN_LEN, MAX_ACCESS_TOKEN_LEN: 16 KiB
        jwks) echo 16384 ;;  # a few RSA keys (MAX_JWKS_LEN, 256 KiB, is too slow to fuzz at)
        pem_key) echo 9000 ;;  # MAX_KEY_BODY is 8 KiB
        *) echo 4096 ;;
    esac
}

# -s none: the crate and its parsers are safe Rust, so AddressSanitizer
# would only halve the throughput; -a keeps debug assertions and overflow
# checks on, which the release (wasm) build does not have.
BUILD_FLAGS=(-s none -a --target-dir "$TARGET_DIR")
echo "building fuzz targets (nightly, cargo-fuzz)..."
"${CARGO_FUZZ[@]}" build "${BUILD_FLAGS[@]}" >"$LOGS/build.log" 2>&1 || {
    tail -30 "$LOGS/build.log"
    exit 1
}

rows=()
total_crashes=0
started=$(date -u +%Y-%m-%dT%H:%MZ)
for t in $TARGETS; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    echo "fuzzing $t for ${SECONDS_PER_TARGET}s..."
    log="$LOGS/$t.log"
    set +e
    "${CARGO_FUZZ[@]}" run "${BUILD_FLAGS[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$t")" -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
    status=$?
    set -e
    execs=$(grep -oE 'stat::number_of_executed_units: +[0-9]+' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    rate=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    if [ "$status" -eq 0 ]; then
        crashes=0
        note=""
    else
        crashes=1
        artifact=$(grep -o 'fuzz/artifacts/[^ ]*' "$log" | tail -1 || true)
        note="${artifact:-exit $status, see $log}"
        total_crashes=$((total_crashes + 1))
        grep -m1 -A3 "panicked at" "$log" || tail -5 "$log"
    fi
    rows+=("| $t | ${execs:-?} | ${rate:-?} | $corpus | $crashes | $note |")
done

table="| target | executions | exec/s | corpus | crashes | crash input |
|---|---:|---:|---:|---:|---|"
for r in "${rows[@]}"; do table+=$'\n'"$r"; done

{
    echo "# Fuzzing results"
    echo
    echo "\`make fuzz\` run of $started (UTC): ${SECONDS_PER_TARGET} s per target" \
        "(FUZZ_SECONDS=${SECONDS_PER_TARGET}), one process per target, on a" \
        "$(nproc)-core machine; $(rustup run nightly rustc --version)," \
        "cargo-fuzz $("${CARGO_FUZZ[@]}" --version | awk '{print $2}'), no sanitizer," \
        "debug assertions and overflow checks on."
    echo
    echo "$table"
    echo
    echo "corpus: inputs in fuzz/corpus/<target> after the run (kept across runs, so it"
    echo "includes earlier local runs). A target stops at its first crash. Crash inputs are kept in"
    echo "\`tests/regressions/<target>/\` and replayed by \`cargo test\` (tests/fuzz_regressions.rs)."
} >fuzz/RESULTS.md

echo
echo "$table"
echo
echo "written to fuzz/RESULTS.md"
[ "$total_crashes" -eq 0 ]
