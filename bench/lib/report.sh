# The results page and chart of bench/run.sh, sourced by it.
#
# Reads RESULTS (values of all repetitions per key), FORWARDERS and the
# run settings, and writes a markdown page and a PNG chart.

# shellcheck shell=bash

ENCRYPTED_FORWARDERS="spiped stunnel ssh-chacha20 ssh-aes128gcm kcptun"

# Print NUMBER with 3 significant digits and no exponent.
report_number() {
	awk -v x="$1" 'BEGIN {
		if (x == "" || x == "-") { print "-"; exit }
		a = x < 0 ? -x : x
		if (a >= 100) printf "%.0f\n", x
		else if (a >= 10) printf "%.1f\n", x
		else if (a >= 1) printf "%.2f\n", x
		else if (a >= 0.1) printf "%.3f\n", x
		else if (a >= 0.01) printf "%.4f\n", x
		else printf "%.5f\n", x
	}'
}

# Print "MEDIAN MIN MAX" of the values stored under KEY.
report_stats() {
	# shellcheck disable=SC2086 # the values are meant to split into words
	bench_stats ${RESULTS[$1]:-}
}

report_median() {
	local median _
	read -r median _ <<<"$(report_stats "$1")"
	echo "$median"
}

# "median (min–max)" of KEY, or just the median after one repetition.
report_cell() {
	local median low high
	read -r median low high <<<"$(report_stats "$1")"
	if [ "$median" = - ]; then
		echo "-"
	elif [ "$REPETITIONS" -eq 1 ]; then
		report_number "$median"
	else
		echo "$(report_number "$median") ($(report_number "$low")–$(report_number "$high"))"
	fi
}

# Print A / B with 2 decimals and a ×.
report_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f×\n", a / b }'
}

# Print "met" when A OPERATOR B is true (OPERATOR is >= or <=), else
# "**not met**".
report_met() {
	awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
		if (a == "-" || b == "-" || a == "" || b == "") { print "not measured"; exit }
		met = (op == ">=") ? (a >= b) : (a <= b)
		print met ? "met" : "**not met**"
	}'
}

report_aead_gbps() {
	local op=$1 body=$2
	awk -v op="op=$op" -v body="body=$body" '$2 == op && $3 == body { sub(/gbps=/, "", $4); print $4 }' \
		<<<"${RESULTS[aead]}"
}

report_package_version() {
	dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"
}

report_machine() {
	local memory
	memory=$(awk '$1 == "MemTotal:" { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	echo "- Date: $RUN_DATE"
	echo "- walguard: $BUILD_SOURCE, meson buildtype=release"
	echo "- CPU: $(nproc) × $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "- Memory: $memory"
	echo "- Kernel: $(uname -sr)"
	echo "- Debian: $(cat /etc/debian_version)"
	echo "- Packages: libsodium23 $(report_package_version libsodium23), libuv1 $(report_package_version libuv1)," \
		"postgresql-15 $(report_package_version postgresql-15), iperf3 $(report_package_version iperf3)," \
		"socat $(report_package_version socat), spiped $(report_package_version spiped)," \
		"stunnel4 $(report_package_version stunnel4), openssh-server $(report_package_version openssh-server)," \
		"openssh-client $(report_package_version openssh-client), kcptun $(report_package_version kcptun)"
	echo "- Settings: $REPETITIONS repetitions; iperf3 and pgbench runs of $SECONDS_PER_RUN s;" \
		"replication runs of $SYNC_SECONDS s"
}

report_forwarder_table() {
	local forwarder walguard_throughput walguard_latency walguard_connections
	walguard_throughput=$(report_median throughput:walguard)
	walguard_latency=$(report_median latency:walguard)
	walguard_connections=$(report_median connections:walguard)
	echo "| forwarder | iperf3 Gbit/s | walguard ÷ this | select-only ms per transaction | walguard ÷ this | new connections per s | walguard ÷ this | connection setup ms |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
	for forwarder in $FORWARDERS; do
		echo "| $forwarder | $(report_cell "throughput:$forwarder")" \
			"| $(report_ratio "$walguard_throughput" "$(report_median "throughput:$forwarder")")" \
			"| $(report_cell "latency:$forwarder")" \
			"| $(report_ratio "$walguard_latency" "$(report_median "latency:$forwarder")")" \
			"| $(report_cell "connections:$forwarder")" \
			"| $(report_ratio "$walguard_connections" "$(report_median "connections:$forwarder")")" \
			"| $(report_cell "connect_ms:$forwarder") |"
	done
}

report_resources_table() {
	local daemon
	echo "| figure | responder (a) | initiator (b) |"
	echo "| --- | --- | --- |"
	echo "| CPU seconds per GB moved, iperf3 run | $(report_cell cpu_per_gb:a) | $(report_cell cpu_per_gb:b) |"
	echo "| peak RSS idle (VmHWM), KiB | ${RESULTS[hwm_idle:a]} | ${RESULTS[hwm_idle:b]} |"
	echo "| RSS with $HELD_CONNECTIONS open connections (VmRSS), KiB | ${RESULTS[rss_held:a]} | ${RESULTS[rss_held:b]} |"
	for daemon in a b; do
		RESULTS[per_connection:$daemon]=$(awk -v held="${RESULTS[rss_held:$daemon]}" \
			-v idle="${RESULTS[rss_idle:$daemon]}" -v n="$HELD_CONNECTIONS" 'BEGIN { printf "%.1f", (held - idle) / n }')
	done
	echo "| RSS added per open connection, KiB | ${RESULTS[per_connection:a]} | ${RESULTS[per_connection:b]} |"
	echo "| peak RSS after the iperf3 runs (VmHWM), KiB | $(report_cell hwm_throughput:a) | $(report_cell hwm_throughput:b) |"
}

report_aead_table() {
	local body
	echo "| body bytes | encrypt GB/s | decrypt GB/s | encrypt + decrypt, CPU s per GB |"
	echo "| --- | --- | --- | --- |"
	for body in 65518 16384; do
		echo "| $body | $(report_aead_gbps encrypt "$body") | $(report_aead_gbps decrypt "$body")" \
			"| $(awk -v e="$(report_aead_gbps encrypt "$body")" -v d="$(report_aead_gbps decrypt "$body")" \
				'BEGIN { printf "%.2f", 1 / e + 1 / d }') |"
	done
	echo
	echo "For reference, OpenSSL $(openssl version | awk '{ print $2 }') (\`openssl speed -evp\`, 16 KiB, encrypt, one core):"
	echo "ChaCha20-Poly1305 ${RESULTS[openssl_chacha20]} GB/s, AES-128-GCM ${RESULTS[openssl_aes128gcm]} GB/s."
}

report_pair_table() {
	local key=$1 unit=$2 path walguard_median
	walguard_median=$(report_median "$key:walguard")
	echo "| path | $unit | walguard ÷ this |"
	echo "| --- | --- | --- |"
	for path in $PAIR_PATHS; do
		echo "| $path | $(report_cell "$key:$path") | $(report_ratio "$walguard_median" "$(report_median "$key:$path")") |"
	done
}

# Print the best (highest) median of KEY among FORWARDER... that ran,
# as "VALUE NAME".
report_best() {
	local key=$1 forwarder best="-" best_name="-" value
	shift
	for forwarder in "$@"; do
		[[ " $FORWARDERS " == *" $forwarder "* ]] || continue
		value=$(report_median "$key:$forwarder")
		[ "$value" = - ] && continue
		if [ "$best" = - ] || awk -v a="$value" -v b="$best" 'BEGIN { exit !(a > b) }'; then
			best=$value
			best_name=$forwarder
		fi
	done
	echo "$best $best_name"
}

report_targets_table() {
	local throughput latency connections best best_name need cpu bound per_a per_b anchors
	throughput=$(report_median throughput:walguard)
	latency=$(report_median latency:walguard)
	connections=$(report_median connections:walguard)

	echo "| target | walguard | compared with | result |"
	echo "| --- | --- | --- | --- |"

	# shellcheck disable=SC2086 # the list is meant to split into words
	read -r best best_name <<<"$(report_best throughput $ENCRYPTED_FORWARDERS)"
	need=$(awk -v b="$best" 'BEGIN { if (b == "-") print "-"; else print 1.2 * b }')
	echo "| throughput ≥ 1.2 × best encrypted anchor | $(report_number "$throughput") Gbit/s" \
		"| 1.2 × $(report_number "$best") ($best_name) = $(report_number "$need") | $(report_met "$throughput" ">=" "$need") |"

	best=$(report_median throughput:ssh-chacha20)
	need=$(awk -v b="$best" 'BEGIN { if (b == "-") print "-"; else print 2 * b }')
	echo "| throughput ≥ 2 × ssh chacha20 | $(report_number "$throughput") Gbit/s" \
		"| 2 × $(report_number "$best") = $(report_number "$need") | $(report_met "$throughput" ">=" "$need") |"

	best=$(report_median latency:socat)
	echo "| select-only latency ≤ socat's | $(report_number "$latency") ms" \
		"| $(report_number "$best") ms | $(report_met "$latency" "<=" "$best") |"

	anchors="socat $ENCRYPTED_FORWARDERS"
	# shellcheck disable=SC2086 # the list is meant to split into words
	read -r best best_name <<<"$(report_best connections $anchors)"
	echo "| new connections per s ≥ best anchor's (direct excluded) | $(report_number "$connections")" \
		"| $(report_number "$best") ($best_name) | $(report_met "$connections" ">=" "$best") |"

	cpu=$(awk -v a="$(report_median cpu_per_gb:a)" -v b="$(report_median cpu_per_gb:b)" 'BEGIN { print a + b }')
	bound=$(awk -v e="$(report_aead_gbps encrypt 65518)" -v d="$(report_aead_gbps decrypt 65518)" \
		'BEGIN { print 1.5 * (1 / e + 1 / d) }')
	echo "| both daemons' CPU ≤ 1.5 × bare encrypt + decrypt | $(report_number "$cpu") s/GB" \
		"| $(report_number "$bound") s/GB | $(report_met "$cpu" "<=" "$bound") |"

	echo "| each daemon's peak RSS idle < 4 MiB | ${RESULTS[hwm_idle:a]} KiB, ${RESULTS[hwm_idle:b]} KiB" \
		"| 4096 KiB | $(report_met "$(awk -v a="${RESULTS[hwm_idle:a]}" -v b="${RESULTS[hwm_idle:b]}" \
			'BEGIN { print (a > b ? a : b) }')" "<=" 4095) |"
	per_a=${RESULTS[per_connection:a]}
	per_b=${RESULTS[per_connection:b]}
	echo "| each daemon < 256 KiB more per open connection | $per_a KiB, $per_b KiB" \
		"| 256 KiB | $(report_met "$(awk -v a="$per_a" -v b="$per_b" 'BEGIN { print (a > b ? a : b) }')" "<=" 255.9) |"
}

report_chart() {
	local png=$1 data=$BENCH_TMP/chart.dat forwarder
	{
		echo "# forwarder throughput low high latency low high"
		for forwarder in $FORWARDERS; do
			echo "$forwarder $(report_stats "throughput:$forwarder") $(report_stats "latency:$forwarder")"
		done
	} >"$data"
	timeout 60 gnuplot <<-EOF || bench_log "warning: gnuplot failed; no chart written"
		set terminal pngcairo size 1200,500 font "sans,10"
		set output "$png"
		set multiplot layout 1,2 title "walguard benchmark, $RUN_DATE (median, bars: min to max of $REPETITIONS)"
		set style data histograms
		set style histogram errorbars gap 1 lw 1
		set style fill solid 0.6 border -1
		set boxwidth 0.8
		set xtics rotate by -35 left nomirror
		set grid ytics
		set key off
		set yrange [0:*]
		set title "iperf3 throughput, one stream (Gbit/s, higher is better)"
		plot "$data" using 2:3:4:xtic(1) linecolor rgb "#3b6ea5"
		set title "pgbench select-only, one client (ms per transaction, lower is better)"
		plot "$data" using 5:6:7:xtic(1) linecolor rgb "#c0504d"
		unset multiplot
	EOF
}

report_write() {
	local markdown=$1 png=$2
	report_chart "$png"
	{
		echo "# walguard benchmark, $RUN_DATE"
		echo
		echo "Made by \`bench/run.sh\`; see \`docs/performance.md\` for what each figure means."
		echo "The machine is shared and noisy: compare the ratios within this run, not"
		echo "absolute figures across runs. Cells show the median and, in brackets, the"
		echo "minimum and maximum of the repetitions."
		echo
		report_machine
		echo
		echo "## Forwarders on loopback"
		echo
		echo "\"walguard ÷ this\" divides walguard's median by this row's: above 1 means"
		echo "walguard's figure is higher (better for throughput and connections, worse"
		echo "for latency)."
		echo
		report_forwarder_table
		echo
		echo "![throughput and latency per forwarder]($(basename "$png"))"
		echo
		echo "## walguard's own cost"
		echo
		report_resources_table
		echo
		echo "## The bound: ChaCha20-Poly1305 on one core (libsodium)"
		echo
		report_aead_table
		if [ -n "${RESULTS[sync_tps:direct]:-}" ]; then
			echo
			echo "## Synchronous replication (pgbench TPC-B-like, 8 clients, $SYNC_SECONDS s)"
			echo
			report_pair_table sync_tps "transactions per s"
			echo
			report_pair_table sync_latency "ms per transaction"
		fi
		if [ -n "${RESULTS[basebackup_seconds:direct]:-}" ]; then
			echo
			echo "## pg_basebackup of a ${RESULTS[basebackup_cluster_mib]} MiB cluster"
			echo
			report_pair_table basebackup_seconds "seconds"
		fi
		echo
		echo "## Targets"
		echo
		report_targets_table
	} >"$markdown"
}

# Replace the part of the docs page between the two marker lines with the
# results page, its title and chart link adjusted to the docs folder.
report_update_docs() {
	local docs=$1 markdown=$2 relative
	relative=../bench/results/$(basename "${markdown%.md}")
	if ! grep -q '^<!-- latest run: start -->$' "$docs" 2>/dev/null; then
		bench_log "warning: $docs has no '<!-- latest run: start -->' line; not updated"
		return 0
	fi
	awk -v results="$markdown" -v relative="$relative" '
		/^<!-- latest run: start -->$/ {
			print
			while ((getline line < results) > 0) {
				if (line ~ /^# /) { sub(/^# /, "### ", line) }
				else if (line ~ /^## /) { sub(/^## /, "#### ", line) }
				gsub(/\]\([^)]*\.png\)/, "](" relative ".png)", line)
				print line
			}
			skipping = 1
			next
		}
		/^<!-- latest run: end -->$/ { skipping = 0 }
		!skipping { print }
	' "$docs" >"$docs.new" && mv "$docs.new" "$docs"
}
