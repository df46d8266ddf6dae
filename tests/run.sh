#!/bin/sh
# Runs every test of a build: the cmocka unit binaries BUILD/tests/test_*, then the integration suite
# (tests/integration/run.py). Prints the failing tests and, as its last line, "N passed, N failed".
# Exit status: 0 when tests ran and none failed, 1 otherwise.
#
#   sh tests/run.sh build
#
# Environment: UNIT_TIMEOUT (s, per unit binary, default 300), IT_TIMEOUT (s, whole integration suite,
# default 900), IT_ARGS (extra arguments for run.py, e.g. "-v" or "-k keepalive").
set -u

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
IT_TIMEOUT=${IT_TIMEOUT:-900}

passed=0
failed=0
failures=""

TMP=$(mktemp -d "${TMPDIR:-/tmp}/aegis-run.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

add_failure() {
    failures="$failures
  $1"
}

finish() {
    if [ -n "$failures" ]; then
        echo "failed tests:$failures"
    fi
    echo "$passed passed, $failed failed"
    if [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; then
        exit 0
    fi
    exit 1
}

if [ ! -d "$BUILD" ]; then
    echo "run.sh: no build directory '$BUILD'" >&2
    failed=1
    add_failure "(no build directory $BUILD)"
    finish
fi
BUILD=$(cd "$BUILD" && pwd)

# timeout(1) is in coreutils; run without it where it is missing.
with_timeout() {
    t=$1
    shift
    if command -v timeout >/dev/null 2>&1; then
        timeout -k 10 "$t" "$@"
    else
        "$@"
    fi
}

# --- unit tests (cmocka) ---
# Counts come from cmocka's summary lines "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)"; the names of
# failing tests from "[  FAILED  ] name". A binary that exits non-zero without reporting a failed test (a crash,
# a sanitizer abort, a timeout) counts as one failure; one that never printed a summary also counts the tests it
# finished ("[       OK ]").
for bin in "$BUILD"/tests/test_*; do
    if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
        continue
    fi
    name=$(basename "$bin")
    out="$TMP/$name.out"
    CMOCKA_MESSAGE_OUTPUT=STDOUT with_timeout "$UNIT_TIMEOUT" "$bin" >"$out" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    summaries=$(grep -c '^\[==========\] [0-9][0-9]* test(s) run\.' "$out")
    names=$(sed -n 's/^\[  FAILED  \] \(.*\)$/\1/p' "$out" | grep -v '^[0-9][0-9]* test(s)' | sort -u)
    if [ "$summaries" -eq 0 ]; then
        p=$(grep -c '^\[       OK \]' "$out")
        f=$(printf '%s\n' "$names" | grep -c .)
    fi
    for n in $names; do
        add_failure "$name: $n"
    done
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        case $rc in
        124 | 137) why="timed out after ${UNIT_TIMEOUT}s" ;;
        *) why="exit status $rc" ;;
        esac
        add_failure "$name: crashed ($why)"
    fi
    if [ "$f" -gt 0 ]; then
        echo "=== $name: $p passed, $f failed (exit $rc); output:"
        cat "$out"
    else
        echo "unit $name: $p passed"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done

# --- fuzz regression: every fuzz target (fuzz/fuzz_NAME.c, linked with fuzz/replay.c) over its seed
# corpus fuzz/corpus/NAME/; one test per target, failed by a target's abort or a sanitizer report. ---
for src in "$ROOT"/fuzz/fuzz_*.c; do
    [ -f "$src" ] || continue
    name=$(basename "$src" .c)
    bin="$BUILD/fuzz/$name"
    corpus="$ROOT/fuzz/corpus/${name#fuzz_}"
    out="$TMP/$name.out"
    if [ ! -x "$bin" ]; then
        echo "not built: $bin" >"$out"
    fi
    if [ -x "$bin" ] && [ -d "$corpus" ] && with_timeout "$UNIT_TIMEOUT" "$bin" "$corpus"/* >"$out" 2>&1; then
        echo "fuzz $name: $(tail -n 1 "$out") replayed"
        passed=$((passed + 1))
    else
        echo "=== fuzz $name failed; output:"
        cat "$out" 2>/dev/null
        add_failure "fuzz $name"
        failed=$((failed + 1))
    fi
done

# --- the shape of the tree: the layer rules of the include graph (tests/check_layers.py) and the
# size of files and functions (tests/check_sizes.py), each on the tree and on its own proof that it
# catches a violation. ---
for check in layers sizes; do
    for mode in "" "--self-test"; do
        out="$TMP/$check.out"
        # shellcheck disable=SC2086
        if python3 "$ROOT/tests/check_$check.py" $mode >"$out" 2>&1; then
            echo "$check ${mode:-tree}: $(tail -n 1 "$out")"
            passed=$((passed + 1))
        else
            echo "=== $check ${mode:-tree} failed; output:"
            cat "$out"
            add_failure "$check ${mode:-tree}"
            failed=$((failed + 1))
        fi
    done
done

# --- integration tests ---
if ! command -v python3 >/dev/null 2>&1; then
    echo "run.sh: python3 not found" >&2
    failed=$((failed + 1))
    add_failure "integration: python3 not found"
    finish
fi
itout="$TMP/integration.out"
# shellcheck disable=SC2086
with_timeout "$IT_TIMEOUT" python3 "$ROOT/tests/integration/run.py" --build "$BUILD" ${IT_ARGS:-} 2>&1 | tee "$itout"
last=$(tail -n 1 "$itout")
it_p=$(printf '%s\n' "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1/p')
it_f=$(printf '%s\n' "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\2/p')
if [ -z "$it_p" ] || [ -z "$it_f" ]; then
    add_failure "integration: run.py ended without a summary (crash or timeout after ${IT_TIMEOUT}s)"
    failed=$((failed + 1))
    # Count what did finish.
    it_p=0
    it_f=0
fi
passed=$((passed + it_p))
failed=$((failed + it_f))
names=$(sed -n 's/^  FAILED TEST: \(.*\)$/\1/p' "$itout")
if [ -n "$names" ]; then
    old_ifs=$IFS
    IFS='
'
    for n in $names; do
        add_failure "integration: $n"
    done
    IFS=$old_ifs
fi
finish
