#!/bin/bash
# Build the libFuzzer targets with AddressSanitizer and UndefinedBehavior-
# Sanitizer, and run each one for a bounded time on its seed corpus.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS is the time per target (default 60). TARGET is one of config,
# datagram, frame, handshake, key (default: all). Each target prints one line,
# "PASS fuzz NAME" or "FAIL fuzz NAME: reason", and the last line is
# "fuzz: N passed, N failed". The exit status is 1 when any target or the
# build failed. Needs clang and libclang-rt-14-dev (scripts/install-deps.sh).
#
# New inputs that find new coverage go to a scratch corpus under
# build-fuzz/corpus, never into tests/fuzz/corpus. An input that fails is
# saved as build-fuzz/crash-NAME-*, and the whole output of each run is in
# build-fuzz/fuzz-NAME.log. To reproduce a failure or fuzz longer by hand:
#   build-fuzz/tests/fuzz/fuzz_key build-fuzz/crash-key-...
#   build-fuzz/tests/fuzz/fuzz_frame -jobs=2 build-fuzz/corpus/frame tests/fuzz/corpus/frame
#
# The seeds in tests/fuzz/corpus/handshake, tests/fuzz/corpus/frame and
# tests/fuzz/corpus/datagram are made by tests/fuzz/make_corpus.c, which every build compiles. After a
# change to the wire format or to the fixed keys, regenerate them with:
#   meson setup build && ninja -C build tests/fuzz/make_corpus
#   build/tests/fuzz/make_corpus tests/fuzz/corpus
# The seeds for config, http and key are written by hand.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
all_targets=(config datagram frame handshake http key)
seconds=60
case "${1:-}" in
[0-9]*) seconds=$1; shift ;;
esac
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

passed=0
failed=0

summary() {
	echo "fuzz: $passed passed, $failed failed"
}

# fail_all REASON: no target can run, so each one fails with the same reason.
fail_all() {
	for target in "${targets[@]}"; do
		echo "FAIL fuzz $target: $1"
		failed=$((failed + 1))
	done
	summary
	exit 1
}

case "$seconds" in
'' | *[!0-9]* | 0)
	echo "fuzz.sh: SECONDS must be a whole number above 0, got '$seconds'" >&2
	echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
	exit 2
	;;
esac
for target in "${targets[@]}"; do
	case " ${all_targets[*]} " in
	*" $target "*) ;;
	*)
		echo "fuzz.sh: unknown target '$target' (expected one of: ${all_targets[*]})" >&2
		exit 2
		;;
	esac
done

# A trial link shows a missing compiler or sanitizer runtime in one line,
# instead of a meson or linker error further down.
if ! command -v clang >/dev/null; then
	fail_all "clang not found (install clang and libclang-rt-14-dev: run scripts/install-deps.sh as root)"
fi
mkdir -p "$build" || fail_all "cannot create $build"
probe="$build/toolchain-probe"
if ! printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return 0; }' |
	clang -x c -fsanitize=fuzzer,address,undefined -o "$probe" - >"$build/toolchain-probe.log" 2>&1; then
	fail_all "clang cannot link a libFuzzer target with ASan and UBSan, so libclang-rt-14-dev is probably missing (run scripts/install-deps.sh as root; details in $build/toolchain-probe.log)"
fi
rm -f "$probe"

# A build folder from an interrupted setup, or one set up without the
# fuzz option, is set up again from nothing.
if [ ! -f "$build/build.ninja" ] || ! grep -q -- '-fsanitize=fuzzer' "$build/build.ninja"; then
	find "$build" -mindepth 1 -maxdepth 1 ! -name corpus ! -name 'crash-*' ! -name 'toolchain-probe.log' \
		-exec rm -rf {} +
	if ! CC=clang meson setup "$build" "$root" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debugoptimized >"$build/setup.log" 2>&1; then
		tail -n 15 "$build/setup.log"
		fail_all "meson setup failed (see $build/setup.log)"
	fi
fi
ninja_targets=()
for target in "${targets[@]}"; do
	ninja_targets+=("tests/fuzz/fuzz_$target")
done
if ! ninja -C "$build" "${ninja_targets[@]}" >"$build/build.log" 2>&1; then
	grep -E 'error|FAILED' "$build/build.log" | head -n 15
	fail_all "build failed (see $build/build.log)"
fi

# reason LOG STATUS: the cause of a failed run in one line, from the
# sanitizer's or libFuzzer's summary.
reason() {
	local summary
	local artifact

	summary=$(grep -E '^SUMMARY: ' "$1" | tail -n 1 | sed -e 's/^SUMMARY: //' -e 's/ in *$//' -e 's/\.$//')
	artifact=$(grep -oE "Test unit written to [^ ]+" "$1" | tail -n 1 | sed 's/^Test unit written to //')
	[ -z "$summary" ] && summary="exited with status $2 and no sanitizer summary"
	if [ -n "$artifact" ]; then
		echo "$summary; input saved as $artifact"
	else
		echo "$summary"
	fi
}

for target in "${targets[@]}"; do
	log="$build/fuzz-$target.log"
	seeds="$root/tests/fuzz/corpus/$target"
	scratch="$build/corpus/$target"

	if [ ! -d "$seeds" ]; then
		echo "FAIL fuzz $target: seed corpus $seeds not found"
		failed=$((failed + 1))
		continue
	fi
	mkdir -p "$scratch"

	# halt_on_error makes UBSan findings fatal, like ASan's. The outer
	# timeout stops a target that does not stop by itself, for example
	# one that hangs before its first input.
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		timeout --kill-after=10 $((seconds + 120)) \
		"$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/crash-$target-" \
		"$scratch" "$seeds" >"$log" 2>&1
	status=$?

	if [ "$status" -eq 0 ]; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "fuzz $target: ${runs:-?} inputs in ${seconds}s"
		echo "PASS fuzz $target"
		passed=$((passed + 1))
		continue
	fi

	failed=$((failed + 1))
	if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
		echo "FAIL fuzz $target: did not stop within $((seconds + 120))s (see $log)"
		continue
	fi
	echo "FAIL fuzz $target: $(reason "$log" "$status") (see $log)"
	# The first frames of the report, without the sanitizer's and libFuzzer's own.
	grep -E '^ *#[0-9]+ |runtime error:' "$log" | grep -vE 'in (__|fuzzer::|_start|main )|libc\.so' |
		head -n 8
done

summary
[ "$failed" -eq 0 ]
