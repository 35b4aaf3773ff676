#!/bin/bash
# Build the libFuzzer targets with AddressSanitizer and UndefinedBehavior-
# Sanitizer, and run each one for a bounded time on its seed corpus.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS is the time per target (default 60). TARGET is one of config,
# frame, handshake, key (default: all). New inputs that find new coverage
# go to a scratch corpus under build-fuzz/, never into tests/fuzz/corpus.
# To fuzz longer, give more seconds, or run a target by hand:
#   build-fuzz/tests/fuzz/fuzz_frame -jobs=2 build-fuzz/corpus/frame tests/fuzz/corpus/frame
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(config frame handshake key)

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$root" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debugoptimized >/dev/null || exit 1
fi
ninja -C "$build" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}") >/dev/null || exit 1

status=0
for target in "${targets[@]}"; do
	scratch="$build/corpus/$target"
	mkdir -p "$scratch"
	echo "== fuzz $target for ${seconds}s"
	# halt_on_error makes UBSan findings fatal, like ASan's.
	if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/crash-$target-" \
		"$scratch" "$root/tests/fuzz/corpus/$target" 2>"$build/fuzz-$target.log"; then
		echo "FAIL fuzz $target: see $build/fuzz-$target.log"
		tail -n 30 "$build/fuzz-$target.log"
		status=1
	else
		grep -E '^stat::number_of_executed_units' "$build/fuzz-$target.log" || true
		echo "PASS fuzz $target"
	fi
done
exit "$status"
