#!/usr/bin/env bash
# The test command: unit (GoogleTest), pg_regress, isolation, TAP.
# Usage: bash scripts/test.sh [--unit-only] [--no-tap] [--keep]
# Ends with one line "N passed, N failed"; exits non-zero if anything failed.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

unit_only=0
run_tap=1
for arg in "$@"; do
    case "$arg" in
        --unit-only) unit_only=1 ;;
        --no-tap) run_tap=0 ;;
        --keep) export ABTEST_KEEP_TMP=1 ;;
        -h|--help)
            sed -n '2,4p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0 ;;
        *) echo "unknown option: $arg" >&2; exit 2 ;;
    esac
done

# ABTEST_LOAD_EXTENSION='' runs pg_regress/isolation without --load-extension.
load_ext=()
if [ -n "${ABTEST_LOAD_EXTENSION-abtest}" ]; then
    load_ext=(--load-extension="${ABTEST_LOAD_EXTENSION-abtest}")
fi

REGRESS_BIN="$ABTEST_PGXS_DIR/src/test/regress/pg_regress"
ISOLATION_BIN="$ABTEST_PGXS_DIR/src/test/isolation/pg_isolation_regress"
PERL_TEST_DIR="$ABTEST_PGXS_DIR/src/test/perl"

total_pass=0
total_fail=0
summary=()

# record STAGE PASSED FAILED
record() {
    total_pass=$(( total_pass + $2 ))
    total_fail=$(( total_fail + $3 ))
    summary+=("$(printf '%-12s %4d passed, %4d failed' "$1" "$2" "$3")")
}

finish() {
    abtest_header "summary"
    local line
    for line in "${summary[@]}"; do
        echo "  $line"
    done
    abtest_stop_cluster
    echo "$total_pass passed, $total_fail failed"
    if [ "$total_fail" -ne 0 ]; then
        exit 1
    fi
    exit 0
}

# Count "... ok" / "... FAILED" lines of pg_regress-style output in file $2;
# a non-zero exit ($3) with no failed test line still counts as one failure.
count_regress() {
    local stage="$1" out="$2" rc="$3" ok bad
    ok=$(grep -cE '\.\.\. ok( |$)' "$out" || true)
    bad=$(grep -cE '\.\.\. FAILED( |$)|\.\.\. failed \(ignored\)' "$out" || true)
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        bad=1
    fi
    record "$stage" "$ok" "$bad"
}

# Count GoogleTest's "[  PASSED  ] N" / "[  FAILED  ] N" in file $2; a non-zero
# exit ($3) without a summary (build error, crash, sanitizer report) is one failure.
count_gtest() {
    local stage="$1" out="$2" rc="$3" ok bad
    ok=$(sed -nE 's/^\[  PASSED  \] ([0-9]+) tests?.*/\1/p' "$out" | tail -n1)
    bad=$(sed -nE 's/^\[  FAILED  \] ([0-9]+) tests?.*/\1/p' "$out" | tail -n1)
    ok=${ok:-0}
    bad=${bad:-0}
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        bad=1
    fi
    record "$stage" "$ok" "$bad"
}

# Copy test inputs into a postgres-owned dir: postgres cannot write the repo.
stage_inputs() {
    local dest="$1" d
    shift
    mkdir -p "$dest/out"
    for d in "$@"; do
        if [ -d "$ABTEST_REPO/$d" ]; then
            cp -a "$ABTEST_REPO/$d" "$dest/"
        fi
    done
    abtest_as_root chown -R postgres:postgres "$dest"
}

abtest_header "dependencies"
abtest_ensure_deps

build_ok=1
if [ "$unit_only" -eq 0 ]; then
    abtest_header "build + install"
    if ! abtest_build_install; then
        echo "BUILD FAILED" >&2
        record build 0 1
        build_ok=0
    fi
fi

abtest_header "unit tests (make unit)"
unit_out="$(mktemp)"
set +e
(cd "$ABTEST_REPO" && make unit PG_CONFIG="$ABTEST_PG_CONFIG") 2>&1 | tee "$unit_out"
unit_rc=${PIPESTATUS[0]}
set -e
count_gtest unit "$unit_out" "$unit_rc"
rm -f "$unit_out"

# The core again under AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer.
abtest_header "unit tests, sanitized (make unit-sanitize)"
san_out="$(mktemp)"
set +e
(cd "$ABTEST_REPO" && make -j2 unit-sanitize) 2>&1 | tee "$san_out" | grep -E '^\[  (PASSED|FAILED)  \]|ERROR|runtime error'
san_rc=${PIPESTATUS[0]}
set -e
if [ "$san_rc" -ne 0 ]; then tail -n 40 "$san_out"; fi
count_gtest sanitized "$san_out" "$san_rc"
rm -f "$san_out"

# libFuzzer on the core's parsers and validators, for a bounded time each.
abtest_header "fuzzing (make fuzz, ${FUZZ_SECONDS:-10}s per target)"
fuzz_out="$(mktemp)"
set +e
(cd "$ABTEST_REPO" && make -j2 fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-10}") 2>&1 | tee "$fuzz_out" | grep -E '^ *(==|fuzz_)'
fuzz_rc=${PIPESTATUS[0]}
set -e
f_pass=$(grep -cE '^ +fuzz_[a-z_]+: Done [0-9]+ runs' "$fuzz_out" || true)
f_fail=0
if [ "$fuzz_rc" -ne 0 ]; then
    tail -n 40 "$fuzz_out"
    f_fail=1
fi
record fuzz "$f_pass" "$f_fail"
rm -f "$fuzz_out"

if [ "$unit_only" -eq 1 ] || [ "$build_ok" -eq 0 ]; then
    finish
fi

shopt -s nullglob
sql_files=("$ABTEST_REPO"/sql/*.sql)
spec_files=("$ABTEST_REPO"/specs/*.spec)
tap_files=("$ABTEST_REPO"/t/*.pl)
shopt -u nullglob

if [ "${#sql_files[@]}" -gt 0 ] || [ "${#spec_files[@]}" -gt 0 ]; then
    abtest_header "starting test cluster"
    # shellcheck disable=SC2119 # no extra postgresql.conf lines
    if ! abtest_start_cluster; then
        record cluster 0 1
        finish
    fi
fi

# run_pg_regress STAGE: every sql/*.sql against the running cluster.
run_pg_regress() {
    local stage="$1" rdir="$ABTEST_TMP/regress" tests=() t rc
    stage_inputs "$rdir" sql expected input output data
    while IFS= read -r t; do tests+=("$t"); done < <(
        for f in "${sql_files[@]}"; do basename "$f" .sql; done | LC_ALL=C sort)
    set +e
    abtest_as_postgres "$REGRESS_BIN" --inputdir="$rdir" --outputdir="$rdir/out" \
        --bindir="$ABTEST_PG_BIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
        "${load_ext[@]}" --dbname=contrib_regression "${tests[@]}" \
        2>&1 | tee "$ABTEST_TMP/regress.log"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ] && [ -s "$rdir/out/regression.diffs" ]; then
        echo "--- regression.diffs ---"
        cat "$rdir/out/regression.diffs"
    fi
    count_regress "$stage" "$ABTEST_TMP/regress.log" "$rc"
}

if [ "${#sql_files[@]}" -gt 0 ]; then
    abtest_header "pg_regress"
    run_pg_regress pg_regress
fi

if [ "${#spec_files[@]}" -gt 0 ]; then
    abtest_header "isolation"
    idir="$ABTEST_TMP/isolation"
    stage_inputs "$idir" specs expected
    tests=()
    while IFS= read -r t; do tests+=("$t"); done < <(
        for f in "${spec_files[@]}"; do basename "$f" .spec; done | LC_ALL=C sort)
    set +e
    abtest_as_postgres "$ISOLATION_BIN" --inputdir="$idir" --outputdir="$idir/out" \
        --bindir="$ABTEST_PG_BIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
        "${load_ext[@]}" --dbname=contrib_regression "${tests[@]}" \
        2>&1 | tee "$ABTEST_TMP/isolation.log"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ] && [ -s "$idir/out/regression.diffs" ]; then
        echo "--- regression.diffs (isolation) ---"
        cat "$idir/out/regression.diffs"
    fi
    count_regress isolation "$ABTEST_TMP/isolation.log" "$rc"
fi

# The shared cluster is not needed by TAP (it makes its own nodes).
if [ -n "${ABTEST_TMP:-}" ]; then
    abtest_stop_cluster
fi

if [ "$run_tap" -eq 1 ] && [ "${#tap_files[@]}" -gt 0 ]; then
    abtest_header "TAP (prove)"
    tapdir="$(mktemp -d "${ABTEST_TMP_BASE:-/tmp}/abtest-tap.XXXXXX")"
    if [ "${ABTEST_KEEP_TMP:-0}" != 1 ]; then
        trap 'rm -rf "$tapdir"' EXIT
    fi
    chmod 755 "$tapdir"
    cp -a "$ABTEST_REPO/t" "$tapdir/"
    mkdir -p "$tapdir/tmp_check"
    abtest_as_root chown -R postgres:postgres "$tapdir"
    tap_log="$tapdir/prove.log"
    tap_rel=()
    for f in "${tap_files[@]}"; do tap_rel+=("t/$(basename "$f")"); done
    set +e
    # Utils.pm puts its logs and data under $TESTDIR/tmp_check; Cluster.pm
    # takes initdb/pg_ctl/postgres from PATH. ABTEST_SRCDIR lets tests find
    # repo files.
    # shellcheck disable=SC2086 # PROVE_FLAGS is meant to be word-split
    (
        cd "$tapdir" || exit 1
        if [ "$(id -u)" -eq 0 ]; then
            as=(runuser -u postgres --)
        elif [ "$(id -un)" = postgres ]; then
            as=()
        else
            as=(sudo -u postgres --)
        fi
        "${as[@]}" env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE \
            TESTDIR="$tapdir" \
            PATH="$ABTEST_PG_BIN:$PATH" \
            PG_REGRESS="$REGRESS_BIN" \
            PERL5LIB="$PERL_TEST_DIR${PERL5LIB:+:$PERL5LIB}" \
            ABTEST_SRCDIR="$ABTEST_REPO" \
            prove -I "$PERL_TEST_DIR" -I "$tapdir" ${PROVE_FLAGS:-} "${tap_rel[@]}"
    ) 2>&1 | tee "$tap_log"
    rc=${PIPESTATUS[0]}
    set -e
    # prove's "Test Summary Report" has one line per bad script:
    #   t/x.pl (Wstat: 256 (exited 1) Tests: 3 Failed: 1)
    # A script that died or lost its plan shows "Failed: 0": count it as one.
    t_total=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+),.*/\1/p' "$tap_log" | tail -n1)
    t_total=${t_total:-0}
    bad_scripts=$(sed -nE 's/^(t\/[^ ]+\.pl) +\(Wstat: .*Failed: ([0-9]+)\)$/\1 \2/p' "$tap_log")
    t_failsub=$(awk '{s += $2} END {print s + 0}' <<<"$bad_scripts")
    t_died=$(awk '$2 == 0 {n++} END {print n + 0}' <<<"$bad_scripts")
    t_fail=$(( t_failsub + t_died ))
    if [ "$rc" -ne 0 ] && [ "$t_fail" -eq 0 ]; then
        t_fail=1
    fi
    t_pass=$(( t_total - t_failsub ))
    if [ "$t_pass" -lt 0 ]; then t_pass=0; fi
    record tap "$t_pass" "$t_fail"
    while read -r script _; do
        [ -n "$script" ] || continue
        f="$tapdir/tmp_check/log/regress_log_$(basename "$script" .pl)"
        if [ -f "$f" ]; then
            echo "--- tail of $f ---"
            tail -n 60 "$f"
        fi
    done <<<"$bad_scripts"
    if [ "${ABTEST_KEEP_TMP:-0}" = 1 ]; then
        abtest_log "kept TAP dir: $tapdir"
    else
        rm -rf "$tapdir"
    fi
fi

# pg_regress once more, against a server whose abtest.so has its core built with
# UndefinedBehaviorSanitizer (any report aborts the backend and is looked for in the
# server log; mk/sanitize.mk says why not ASan). It replaces the installed library
# for the duration and reinstalls the normal build afterwards.
# ABTEST_SANITIZED_REGRESS=0 skips it.
if [ "${ABTEST_SANITIZED_REGRESS:-1}" = 1 ] && [ "${#sql_files[@]}" -gt 0 ]; then
    abtest_header "pg_regress, core under UBSan"
    sandir="$(mktemp -d "${ABTEST_TMP_BASE:-/tmp}/abtest-sanitized.XXXXXX")"
    cp -a "$ABTEST_REPO/Makefile" "$ABTEST_REPO/mk" "$ABTEST_REPO/src" "$ABTEST_REPO/abtest.control" \
        "$ABTEST_REPO"/abtest--*.sql "$sandir/"
    find "$sandir" \( -name '*.o' -o -name '*.so' -o -name '*.bc' \) -delete
    if (make -C "$sandir" -j2 -s sanitized-extension PG_CONFIG="$ABTEST_PG_CONFIG" &&
        abtest_as_root make -C "$sandir" -s install PG_CONFIG="$ABTEST_PG_CONFIG") >"$sandir/build.log" 2>&1; then
        if ABTEST_SERVER_ENV="UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1" abtest_start_cluster; then
            run_pg_regress ubsan
            if grep -qE 'runtime error:|Sanitizer' "$ABTEST_TMP/server.log"; then
                echo "--- sanitizer reports in the server log ---"
                grep -E -A30 'runtime error:|Sanitizer' "$ABTEST_TMP/server.log" | head -n 120
                record ubsan 0 1
            fi
            abtest_stop_cluster
        else
            record ubsan 0 1
        fi
    else
        tail -n 40 "$sandir/build.log"
        record ubsan 0 1
    fi
    rm -rf "$sandir"
    abtest_build_install >/dev/null || record reinstall 0 1
fi

finish
