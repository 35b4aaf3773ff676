#!/bin/bash
# Run walguard-keygen as a user would and check its output, exit codes and
# the files it writes. Usage: test_keygen.sh PATH-TO-walguard-keygen
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 PATH-TO-walguard-keygen" >&2
	exit 2
fi
# Absolute, because the tests run inside their own temporary folder.
keygen=$(realpath -- "$1")

work=$(mktemp -d "${TMPDIR:-/tmp}/walguard-test-keygen.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
cd "$work"

passed=0
failed=0

pass() {
	passed=$((passed + 1))
	echo "ok: $1"
}

fail() {
	failed=$((failed + 1))
	echo "FAILED: $1" >&2
}

check() {
	local name=$1
	shift
	if "$@"; then
		pass "$name"
	else
		fail "$name"
	fi
}

# A key line is 44 characters of padded base64 and a newline, nothing more.
is_key_file() {
	[ "$(wc -c < "$1")" -eq 45 ] && [ "$(wc -l < "$1")" -eq 1 ] &&
		grep -Eqx '[A-Za-z0-9+/]{43}=' "$1"
}

file_mode() {
	stat -c '%a' "$1"
}

# genkey | pubkey
"$keygen" genkey > private
"$keygen" pubkey < private > public
check "genkey prints one key line" is_key_file private
check "pubkey prints one key line" is_key_file public
check "public key differs from private key" test "$(cat private)" != "$(cat public)"

# The known answer from RFC 7748, section 6.1 (Alice's key pair).
alice_private=$(printf '%s' 77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a |
	sed 's/../\\x&/g')
printf '%b' "$alice_private" | base64 > alice
check "pubkey matches RFC 7748 vector" \
	test "$("$keygen" pubkey < alice)" = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="

# Whitespace around the key is fine and gives the same public key.
printf '  \t%s \r\n\n' "$(cat private)" > padded
check "pubkey accepts surrounding whitespace" \
	test "$("$keygen" pubkey < padded)" = "$(cat public)"
printf '%s' "$(cat private)" > bare
check "pubkey accepts a key without newline" \
	test "$("$keygen" pubkey < bare)" = "$(cat public)"

# Anything else is rejected with exit 1 and a message on stderr only.
expect_rejected() {
	local name=$1
	local input=$2
	local status=0

	printf '%s' "$input" | "$keygen" pubkey > out 2> err || status=$?
	if [ "$status" -eq 1 ] && [ ! -s out ] && grep -q 'invalid private key' err; then
		pass "$name"
	else
		fail "$name (exit $status, stdout '$(cat out)', stderr '$(cat err)')"
	fi
}
key=$(cat private)
expect_rejected "pubkey rejects garbage" "not a key at all"
expect_rejected "pubkey rejects empty input" ""
expect_rejected "pubkey rejects a short key" "${key:1}"
expect_rejected "pubkey rejects a long key" "A$key"
expect_rejected "pubkey rejects inner whitespace" "${key:0:20} ${key:20}"
expect_rejected "pubkey rejects two keys" "$key
$key"

# pair writes NAME.key (0600) and NAME.pub (0644), whatever the umask.
(umask 000 && "$keygen" pair host > pair-output)
check "pair writes private key file" is_key_file host.key
check "pair writes public key file" is_key_file host.pub
check "pair private key mode 0600" test "$(file_mode host.key)" = 600
check "pair public key mode 0644" test "$(file_mode host.pub)" = 644
check "pair public key matches private" test "$("$keygen" pubkey < host.key)" = "$(cat host.pub)"
check "pair prints the public key" cmp -s pair-output host.pub

(umask 077 && "$keygen" pair strict > /dev/null)
check "pair public key mode 0644 under umask 077" test "$(file_mode strict.pub)" = 644

# A second pair with the same name changes nothing.
cp host.key host.key.before
cp host.pub host.pub.before
status=0
"$keygen" pair host > out 2> err || status=$?
check "pair refuses to overwrite" test "$status" -eq 1
check "pair names the existing file" grep -q 'host.key already exists' err
check "pair leaves private key alone" cmp -s host.key host.key.before
check "pair leaves public key alone" cmp -s host.pub host.pub.before

# Only NAME.pub exists: NAME.key must not be created either.
echo "someone else's" > lonely.pub
status=0
"$keygen" pair lonely > out 2> err || status=$?
check "pair refuses when only .pub exists" test "$status" -eq 1
check "pair names the existing .pub" grep -q 'lonely.pub already exists' err
check "pair writes no .key beside a .pub" test ! -e lonely.key

# A dangling symbolic link counts as an existing file.
ln -s "$work/nowhere" dangling.key
status=0
"$keygen" pair dangling > out 2> err || status=$?
check "pair refuses a dangling symlink" test "$status" -eq 1
check "pair creates nothing through it" test ! -e nowhere

# genpsk: a fresh key each run.
"$keygen" genpsk > psk1
"$keygen" genpsk > psk2
check "genpsk prints one key line" is_key_file psk1
check "genpsk differs each run" test "$(cat psk1)" != "$(cat psk2)"
"$keygen" genkey > private2
check "genkey differs each run" test "$(cat private)" != "$(cat private2)"

# Usage errors exit 2; --help and --version exit 0.
expect_status() {
	local name=$1
	local expected=$2
	local status=0
	shift 2

	"$keygen" "$@" > out 2> err < /dev/null || status=$?
	if [ "$status" -eq "$expected" ]; then
		pass "$name"
	else
		fail "$name (exit $status, expected $expected)"
	fi
}
expect_status "no command exits 2" 2
expect_status "unknown command exits 2" 2 frobnicate
expect_status "unknown option exits 2" 2 --frobnicate
expect_status "extra argument exits 2" 2 genkey extra
expect_status "pair without name exits 2" 2 pair
expect_status "pair with empty name exits 2" 2 pair ""
expect_status "help exits 0" 0 --help
for command in genkey pubkey genpsk pair; do
	check "help describes $command" grep -q "^  $command " out
done
expect_status "version exits 0" 0 --version
check "version prints the name" grep -q '^walguard-keygen ' out

# A full disk is an error, not a silent empty key.
if [ -w /dev/full ]; then
	status=0
	"$keygen" genkey > /dev/full 2> err || status=$?
	check "genkey reports write errors" test "$status" -eq 1
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
