#!/bin/sh
# Runs every benchmark that `make -C bench build` could build and prints one line per
# figure; a figure whose component has not landed yet gets a "NOT MEASURED" line saying
# why. Everything printed also goes to out/results.txt; figures the later (Lua)
# benchmarks compare with are passed through out/figures.txt ($BENCH_FIGURES).
# Knobs (environment): PASSES (default 7 for C, 5 for Lua), CALLS (Converse calls a pass,
# default 2000), WORDS (events in the measured ConverseStream, default 100000),
# RSS_WORDS (events in the long client stream for the RSS figure, default 2000000, the
# emulator's maximum; 0 skips it).
cd "$(dirname "$0")" || exit 2
ROOT=..
OUT=out
EMU_BIN=${BEDROCK_EMULATOR:-$ROOT/build/bin/bedrock-emulator}
KEY_ID=AKIDBENCHEXAMPLE
SECRET=benchSecretKeyExample0123456789abcdefghij
PASSES_C=${PASSES:-7}
PASSES_LUA=${PASSES:-5}
CALLS=${CALLS:-2000}
WORDS=${WORDS:-100000}
RSS_WORDS=${RSS_WORDS:-2000000}
mkdir -p "$OUT"
BENCH_FIGURES=$(pwd)/$OUT/figures.txt
export BENCH_FIGURES
: >"$BENCH_FIGURES"
export LUA_PATH="./?.lua;;"

EMU_PID=""
stop_emulator() {
	if [ -n "$EMU_PID" ]; then
		kill "$EMU_PID" 2>/dev/null
		wait "$EMU_PID" 2>/dev/null
		EMU_PID=""
	fi
}

# Starts the emulator on a free port with SigV4 checking for our key; sets EMU_URL.
start_emulator() {
	[ -x "$EMU_BIN" ] || return 1
	"$EMU_BIN" --port 0 --key "$KEY_ID:$SECRET" >"$OUT/emulator.out" 2>"$OUT/emulator.err" &
	EMU_PID=$!
	i=0
	while [ $i -lt 100 ]; do
		port=$(head -n 1 "$OUT/emulator.out" 2>/dev/null)
		case $port in
		[0-9]*) EMU_URL="http://127.0.0.1:$port"; return 0 ;;
		esac
		kill -0 "$EMU_PID" 2>/dev/null || break
		sleep 0.05
		i=$((i + 1))
	done
	stop_emulator
	return 1
}

# The emulator's own serving rate: a ConverseStream of $1 text deltas fetched by the curl
# CLI (signed with --aws-sigv4) to /dev/null, $2 transfers after one warm-up, median
# transfer time. The emulator encodes every frame before it sends the first byte, so the
# time to first byte is printed too.
emulator_rate() {
	words=$1 reps=$2
	body="{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"__stream_words $words\"}]}]}"
	# a model id without ':' because curl's --aws-sigv4 does not double-encode the path
	# as SigV4 wants for non-S3 services; the emulator's work does not depend on it
	u="$EMU_URL/model/amazon.titan-text-express-v1/converse-stream"
	i=0
	while [ $i -le "$reps" ]; do
		r=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total} %{time_starttransfer}' \
			--aws-sigv4 "aws:amz:us-east-1:bedrock" --user "$KEY_ID:$SECRET" \
			-H 'content-type: application/json' --data-binary "$body" "$u")
		set -- $r
		if [ "$1" != 200 ]; then
			echo "emulator.stream NOT MEASURED: curl got HTTP $1 for __stream_words $words"
			return
		fi
		[ $i -gt 0 ] && echo "$3 $4 $2"
		i=$((i + 1))
	done | sort -n | awk -v w="$words" -v f="$BENCH_FIGURES" '
		{ t[NR] = $1; fb[NR] = $2; b = $3 }
		END {
			if (NR == 0) exit
			m = int((NR + 1) / 2)
			printf "emulator.stream %7.3f M events/s %8.1f MB/s (%d text deltas, %.1f MB, %.3f s, first byte after %.3f s; median of %d) ConverseStream served to curl -o /dev/null\n", w / t[m] / 1e6, b / t[m] / 1e6, w, b / 1e6, t[m], fb[m], NR
			printf "emulator.stream.%d.events_per_s %.9g\n", w, w / t[m] >> f
			printf "emulator.stream.%d.bytes %d\n", w, b >> f
		}'
}

run() {
	# every step is bounded so a hung component cannot hang the run
	timeout 300 "$@" || echo "bench: '$*' failed (status $?)"
}

{
	# this block runs in a subshell (the pipe to tee): the trap must be set inside it
	trap stop_emulator EXIT INT TERM
	echo "== machine"
	echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') (family $(lscpu | sed -n 's/^CPU family: *//p') model $(lscpu | sed -n 's/^Model: *//p'), $(nproc) cores, $(lscpu | sed -n 's/^Hypervisor vendor: *//p') guest), $(uname -sr)"
	echo "cc: $(${CC:-cc} --version | head -n 1); $(curl --version | head -n 1 | cut -d' ' -f1-2); $(openssl version 2>/dev/null)"
	echo "lua: $(lua5.4 -v 2>&1 | cut -d' ' -f1-2); $(luajit -v 2>&1 | cut -d' ' -f1-2)"
	if command -v dpkg-query >/dev/null 2>&1; then
		echo "packages: $(dpkg-query -W -f='${Package} ${Version}, ' zlib1g luajit2 lua-cjson libcurl4 2>/dev/null | sed 's/, $//')"
	fi
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "load average before the run: $(cut -d" " -f1-3 /proc/loadavg) (other work on the machine skews the figures)"

	echo "== corpora"
	for f in corpus/small.es corpus/chunk.es corpus/large.es; do
		[ -f "$f" ] && echo "$f $(wc -c <"$f") bytes"
	done

	echo "== C core"
	if [ -x $OUT/bench_decode ]; then
		run $OUT/bench_decode corpus "$PASSES_C"
	else
		echo "c.decode NOT MEASURED: br_eventstream has not landed (no br_es_decoder_next in build/lua5.4/obj)"
	fi
	if [ -x $OUT/bench_sigv4 ]; then
		run $OUT/bench_sigv4 "$PASSES_C"
	else
		run $OUT/bench_sigv4_floor "$PASSES_C"
	fi

	for lua in lua5.4 luajit; do
		echo "== bedrock.core from $lua"
		run $lua bench_core.lua corpus "$PASSES_LUA" decode
		run $lua bench_core.lua corpus "$PASSES_LUA" sign
		run $lua bench_core.lua corpus "$PASSES_LUA" rss
	done

	for lua in lua5.4 luajit; do
		echo "== the client's Stream over the corpora from $lua (no network)"
		run $lua bench_stream.lua corpus "$PASSES_LUA"
	done

	echo "== client against bedrock-emulator"
	if start_emulator; then
		echo "emulator: $EMU_URL (SigV4 checked)"
		emulator_rate "$WORDS" 3
		[ "$RSS_WORDS" -gt 0 ] && emulator_rate "$RSS_WORDS" 1
		if [ -x $OUT/bare_converse ]; then
			run $OUT/bare_converse "$EMU_URL" "$KEY_ID" "$SECRET" "$CALLS" "$PASSES_LUA"
		else
			echo "c.converse.bare NOT MEASURED: br_sigv4 has not landed"
		fi
		[ -x $OUT/bare_converse ] && export BARE_CONVERSE=$OUT/bare_converse
		for lua in lua5.4 luajit; do
			run $lua bench_client.lua "$EMU_URL" "$KEY_ID" "$SECRET" "$CALLS" "$PASSES_LUA" "$WORDS" "$RSS_WORDS"
		done
		# last: it sets the emulator's pacing (and resets it when done)
		for lua in lua5.4 luajit; do
			run $lua bench_async.lua "$EMU_URL" "$KEY_ID" "$SECRET" 100 "$PASSES_LUA"
		done
		stop_emulator
	else
		echo "client NOT MEASURED: bedrock-emulator not built or did not start ($EMU_BIN)"
	fi
} 2>&1 | tee "$OUT/results.txt"
