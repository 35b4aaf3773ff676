#!/bin/bash
# Install what is missing, build, and run every test: the unit tests through
# meson, each libFuzzer target for WALGUARD_FUZZ_SECONDS (default 60), then
# each end-to-end script in tests/e2e. Run as root on Debian 12 (the
# end-to-end tests make network namespaces and start PostgreSQL).
#
# The last line is the result: "N passed, N failed" (and ", N skipped").
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
build="${WALGUARD_BUILD:-$root/build}"
e2e_timeout="${WALGUARD_E2E_TIMEOUT:-300}"
fuzz_seconds="${WALGUARD_FUZZ_SECONDS:-60}"
cd "$root" || exit 1

passed=0
failed=0
skipped=0
failures=()

record() {	# record NAME STATUS(0 pass, 77 skip, other fail)
	case "$2" in
	0) passed=$((passed + 1)) ;;
	77) skipped=$((skipped + 1)) ;;
	*) failed=$((failed + 1)); failures+=("$1") ;;
	esac
}

summary() {
	if [ ${#failures[@]} -gt 0 ]; then
		echo "failed: ${failures[*]}"
	fi
	if [ "$skipped" -gt 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
}

if ! "$root/scripts/install-deps.sh"; then
	echo "scripts/install-deps.sh failed"
	record install-deps 1
	summary
	exit 1
fi

echo "== build"
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" >/dev/null || { record build 1; summary; exit 1; }
fi
if ! ninja -C "$build"; then
	record build 1
	summary
	exit 1
fi

echo "== unit tests"
meson test -C "$build" --suite unit --print-errorlogs
# meson's own summary is not the result: count each test from its log.
while read -r name result; do
	case "$result" in
	OK|EXPECTEDFAIL) record "$name" 0 ;;
	SKIP) record "$name" 77 ;;
	*) record "$name" 1 ;;
	esac
done < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    entry = json.loads(line)
    print(entry["name"].split(" / ")[-1], entry["result"])
' "$build/meson-logs/testlog.json")

# Each fuzz target prints "PASS fuzz NAME" or "FAIL fuzz NAME: ..."; a
# build failure prints neither, so it counts as one failure of its own.
echo "== fuzz (${fuzz_seconds}s per target)"
fuzz_lines=0
while IFS= read -r line; do
	echo "$line"
	case "$line" in
	"PASS fuzz "*) record "${line#PASS }" 0; fuzz_lines=$((fuzz_lines + 1)) ;;
	"FAIL fuzz "*) name=${line#FAIL }; record "${name%%:*}" 1; fuzz_lines=$((fuzz_lines + 1)) ;;
	esac
done < <("$root/scripts/fuzz.sh" "$fuzz_seconds" 2>&1)
[ "$fuzz_lines" -gt 0 ] || record "fuzz build" 1

for script in tests/e2e/*.sh; do
	name=$(basename "$script" .sh)
	# lib.sh and *_lib.sh are sourced by the tests, not tests themselves.
	case "$name" in
	lib | *_lib) continue ;;
	esac
	echo "== end-to-end: $name"
	WALGUARD_BUILD="$build" timeout --kill-after=20 "$e2e_timeout" bash "$script"
	status=$?
	[ "$status" -eq 124 ] && echo "FAIL $name: timed out after ${e2e_timeout}s"
	record "e2e/$name" "$status"
done

summary
[ "$failed" -eq 0 ]
