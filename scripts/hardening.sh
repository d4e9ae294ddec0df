# shellcheck shell=bash
# The hardening part of `./dev test`: the same suites again with ASan+UBSan
# binaries (leaks included), and every fuzz target under libFuzzer for a
# bounded time. Sourced by ./dev after scripts/common.sh. Prefix `hd_`.

HD_ASAN_BUILD="$TK_ROOT/build-asan"
HD_FUZZ_BUILD="$TK_ROOT/build-fuzz"
HD_FUZZ_TARGETS=(fuzz_http_body fuzz_http_query fuzz_envelope fuzz_jwt fuzz_replies fuzz_signature)
HD_FUZZ_SECONDS="${FUZZ_SECONDS:-30}"

# Sanitizers stop at the first error; the services' own exit code then says so
# (and the end-to-end suite fails on a report in a service's log).
HD_ASAN_DEFAULT="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=23"
HD_UBSAN_DEFAULT="print_stacktrace=1:halt_on_error=1"
# Options from the caller's environment replace ours: say so, since e.g.
# detect_leaks=0 would quietly turn the leak check off.
hd_warn_overrides() {
    [[ -z ${ASAN_OPTIONS:-} || $ASAN_OPTIONS == "$HD_ASAN_DEFAULT" ]] ||
        tk_warn "ASAN_OPTIONS from the environment replace the defaults ($HD_ASAN_DEFAULT): $ASAN_OPTIONS"
    [[ -z ${UBSAN_OPTIONS:-} || $UBSAN_OPTIONS == "$HD_UBSAN_DEFAULT" ]] ||
        tk_warn "UBSAN_OPTIONS from the environment replace the defaults ($HD_UBSAN_DEFAULT): $UBSAN_OPTIONS"
}

hd_build_sanitized() {
    hd_warn_overrides
    export ASAN_OPTIONS="${ASAN_OPTIONS:-$HD_ASAN_DEFAULT}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-$HD_UBSAN_DEFAULT}"
    cmake -S "$TK_ROOT" -B "$HD_ASAN_BUILD" -DCMAKE_BUILD_TYPE=Debug -DTICKET_SANITIZE=ON \
        -DTICKET_PYTHON="$TK_VENV/bin/python" >"$TK_ROOT/.cache/cmake-asan.log" 2>&1 ||
        { cat "$TK_ROOT/.cache/cmake-asan.log" >&2; tk_fail "cmake (ASan build) failed"; return 1; }
    cmake --build "$HD_ASAN_BUILD" -j2 >"$TK_ROOT/.cache/build-asan.log" 2>&1 ||
        { tail -n 40 "$TK_ROOT/.cache/build-asan.log" >&2; tk_fail "ASan build failed; see .cache/build-asan.log"; return 1; }
}

# Builds the libFuzzer targets with clang (instrumenting our libraries too)
# and runs each for HD_FUZZ_SECONDS on a scratch copy of its saved corpus.
hd_run_fuzzers() {
    command -v clang >/dev/null || { tk_fail "clang is missing (./dev installs it)"; return 1; }
    CC=clang cmake -S "$TK_ROOT" -B "$HD_FUZZ_BUILD" -DTICKET_FUZZ=ON -DTICKET_WERROR=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
        >"$TK_ROOT/.cache/cmake-fuzz.log" 2>&1 ||
        { cat "$TK_ROOT/.cache/cmake-fuzz.log" >&2; tk_fail "cmake (fuzz build) failed"; return 1; }
    cmake --build "$HD_FUZZ_BUILD" -j2 --target "${HD_FUZZ_TARGETS[@]}" >"$TK_ROOT/.cache/build-fuzz.log" 2>&1 ||
        { tail -n 40 "$TK_ROOT/.cache/build-fuzz.log" >&2; tk_fail "fuzz build failed; see .cache/build-fuzz.log"; return 1; }
    local target work rc=0
    for target in "${HD_FUZZ_TARGETS[@]}"; do
        work=$(mktemp -d "${TMPDIR:-/tmp}/ticket-fuzz.XXXXXX")
        cp "$TK_ROOT/tests/fuzz/corpus/$target/"* "$work/"
        if (cd "$work" && ASAN_OPTIONS=detect_leaks=1 "$HD_FUZZ_BUILD/tests/fuzz/$target" \
                -max_total_time="$HD_FUZZ_SECONDS" -max_len=8192 -timeout=10 -print_final_stats=1 \
                "$work" >"$work.log" 2>&1); then
            tk_info "fuzz $target: $(grep -o 'number_of_executed_units: [0-9]*' "$work.log" | cut -d' ' -f2) runs, no crash"
            rm -rf "$work" "$work.log"
        else
            tk_fail "fuzz $target found a crash: $(grep -m1 -E 'ERROR|runtime error' "$work.log"); input and log in $work (add the input to tests/fuzz/corpus/$target as a regression case)"
            rc=1
        fi
    done
    return "$rc"
}
