#!/bin/sh
# Through one nginx worker against the emulator: Converse calls/s and ConverseStream
# events/s made by the client inside the worker (cosocket transport, and libcurl), each
# next to nginx's own proxy_pass of the same request to the same upstream, measured in
# the same run, interleaved round by round (medians over ROUNDS, ratios taken per round). Load generator: wrk.
# Knobs: ROUNDS (5), SECS (2 s per measurement), CONNS (32), WORDS (words in the streamed
# prompt, 200).
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-2}
CONNS=${CONNS:-32}
WORDS=${WORDS:-200}
for c in nginx wrk; do
	command -v $c >/dev/null 2>&1 || { echo "NOT MEASURED: nginx bench needs $c"; exit 0; }
done
[ -f build/luajit/bedrock/core.so ] || { echo "NOT MEASURED: make LUA=luajit module first"; exit 0; }
[ -x build/bin/bedrock-emulator ] || { echo "NOT MEASURED: make emulator first"; exit 0; }
MODDIR=$(nginx -V 2>&1 | tr ' ' '\n' | sed -n 's/^--modules-path=//p')
MODDIR=${MODDIR:-/usr/lib/nginx/modules}

tmp=$(mktemp -d)
emu_pid=""
cleanup() {
	[ -f "$tmp/logs/nginx.pid" ] && nginx -p "$tmp" -c "$tmp/nginx.conf" -s stop 2>/dev/null || true
	[ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null || true
	sleep 0.2
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

mkfifo "$tmp/emu.out"
build/bin/bedrock-emulator --port 0 --no-auth >"$tmp/emu.out" 2>/dev/null &
emu_pid=$!
read -r EMU_PORT <"$tmp/emu.out"
cat "$tmp/emu.out" >/dev/null &
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

mkdir -p "$tmp/logs" "$tmp/tmp"
cat >"$tmp/nginx.conf" <<CONF
load_module $MODDIR/ndk_http_module.so;
load_module $MODDIR/ngx_http_lua_module.so;
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
env BENCH_ENDPOINT=http://127.0.0.1:$EMU_PORT;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/f;
  uwsgi_temp_path tmp/u; scgi_temp_path tmp/s;
  client_body_buffer_size 64k;
  lua_package_path "$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;$ROOT/bench/nginx/?.lua;;";
  lua_package_cpath "$ROOT/build/luajit/?.so;;";
  lua_socket_pool_size 128;
  upstream emulator { server 127.0.0.1:$EMU_PORT; keepalive 128; }
  server {
    listen 127.0.0.1:$PORT backlog=4096;
    location /model/ {
      proxy_pass http://emulator;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
    location = /ngx/converse { content_by_lua_block { require("bench_ngx").converse("ngx") } }
    location = /curl/converse { content_by_lua_block { require("bench_ngx").converse("curl") } }
    location = /ngx/stream { content_by_lua_block { require("bench_ngx").stream("ngx", "sse") } }
    location = /curl/stream { content_by_lua_block { require("bench_ngx").stream("curl", "sse") } }
    location = /ngx/raw { content_by_lua_block { require("bench_ngx").raw() } }
    location = /ngx/count { content_by_lua_block { require("bench_ngx").stream("ngx", "count") } }
    location = /curl/count { content_by_lua_block { require("bench_ngx").stream("curl", "count") } }
    location = /ping { return 200 "ok"; }
  }
}
CONF
nginx -p "$tmp" -c "$tmp/nginx.conf"
i=0
until curl -sf "http://127.0.0.1:$PORT/ping" >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || { cat "$tmp/logs/error.log"; exit 1; }
	sleep 0.05
done
WORKER=$(pgrep -P "$(cat "$tmp/logs/nginx.pid")" | head -n 1)

words=""
n=0
while [ $n -lt "$WORDS" ]; do words="$words w$n"; n=$((n + 1)); done
SHORT='{"messages":[{"role":"user","content":[{"text":"How are you today?"}]}]}'
LONG="{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"${words# }\"}]}]}"
MODEL=anthropic.claude-3-haiku-20240307-v1:0
for b in short long; do
	if [ $b = short ]; then body=$SHORT; else body=$LONG; fi
	cat >"$tmp/$b.lua" <<WRK
wrk.method = "POST"
wrk.body = [[$body]]
wrk.headers["Content-Type"] = "application/json"
WRK
done

# events in one streamed answer (the same upstream stream for every path)
EVENTS=$(curl -s -d "$LONG" "http://127.0.0.1:$PORT/ngx/stream" | grep -c '^data: {')
# a check that each path answers before measuring
for p in "/model/$MODEL/converse" /ngx/converse /curl/converse /ngx/raw; do
	code=$(curl -s -o /dev/null -w '%{http_code}' -d "$SHORT" "http://127.0.0.1:$PORT$p")
	[ "$code" = 200 ] || { echo "bench: $p answered $code"; cat "$tmp/logs/error.log"; exit 1; }
done

# the worker's CPU time so far, in clock ticks (utime + stime)
ticks() { awk '{ print $14 + $15 }' "/proc/$WORKER/stat"; }
HZ=$(getconf CLK_TCK)
# Waits until the worker answers /ping within 50 ms: a load whose client has gone can
# leave work behind (the curl transport finishes queued calls one by one, blocking).
settle() {
	i=0
	while [ $i -lt 600 ]; do
		t=$(curl -s -o /dev/null -w '%{time_total}' --max-time 5 "http://127.0.0.1:$PORT/ping" || echo 9)
		awk -v t="$t" 'BEGIN { exit !(t < 0.05) }' && return 0
		i=$((i + 1)); sleep 0.1
	done
}
rps() { # path script -> requests/s, and the worker's CPU microseconds per request
	settle
	t0=$(ticks)
	wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$tmp/$2.lua" "http://127.0.0.1:$PORT$1" >"$tmp/wrk.out" 2>&1
	t1=$(ticks)
	grep -q Non-2xx "$tmp/wrk.out" && { echo "bench: errors from $1" >&2; cat "$tmp/wrk.out" >&2; }
	awk -v dt=$((t1 - t0)) -v hz="$HZ" '/ requests in / { n = $1 } /^Requests\/sec:/ { r = $2 }
		END { printf "%s %.1f\n", r, (n > 0 ? dt / hz * 1e6 / n : 0) }' "$tmp/wrk.out"
}
# requests/s of a load, and the 99th percentile latency (ms) of /ping on the same worker
# meanwhile (one connection)
rps_ping() {
	settle
	wrk -t1 -c1 -d"${SECS}s" --latency "http://127.0.0.1:$PORT/ping" >"$tmp/ping.out" 2>&1 &
	wp=$!
	x=$(wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$tmp/$2.lua" "http://127.0.0.1:$PORT$1" 2>&1 | awk '/^Requests\/sec:/ { print $2 }')
	wait $wp
	# the 99th percentile in ms, or -1 when no ping was answered in the whole window
	p99=$(awk '/ requests in / { n = $1 } $1 == "99%" { v = $2
		if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) }
		else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 } }
		END { print (n > 0 ? v : -1), n + 0 }' "$tmp/ping.out")
	echo "${x:-0} $p99"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

: >"$tmp/r"
r=0
while [ $r -lt "$ROUNDS" ]; do
	r=$((r + 1))
	pc=$(rps "/model/$MODEL/converse" short); nc=$(rps /ngx/converse short); cc=$(rps /curl/converse short)
	ps=$(rps "/model/$MODEL/converse-stream" long)
	nk=$(rps /ngx/count long); ck=$(rps /curl/count long)
	ns=$(rps /ngx/stream long); cs=$(rps /curl/stream long)
	# paced streams (20 ms before each event, as a model writes): the worker is mostly
	# waiting, and /ping shows whether it waits without blocking
	curl -s -X POST -H 'x-emulator-admin: 1' "http://127.0.0.1:$EMU_PORT/_emulator/pacing?ms=20" >/dev/null
	set -- $(rps_ping /ngx/count short); np=$2; nprate=$1; npn=$3
	set -- $(rps_ping /curl/count short); cp=$2; cprate=$1; cpn=$3
	curl -s -X POST -H 'x-emulator-admin: 1' "http://127.0.0.1:$EMU_PORT/_emulator/pacing?ms=0" >/dev/null
	nr=$(rps /ngx/raw short)
	# each figure is "rate cpu": 8 pairs, then the two ping latencies
	echo "$pc $nc $cc $ps $nk $ck $ns $cs $np $cp $nr $nprate $cprate $npn $cpn" >>"$tmp/r"
done
# medians of each figure, and of each round's ratio to its own proxy_pass figure; the
# CPU ratio is proxy_pass's worker CPU per request over the path's (what the rate ratio
# would be if the worker were the only thing on the machine)
awk -v ev="$EVENTS" -v rounds="$ROUNDS" -v secs="$SECS" -v conns="$CONNS" '
function med(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return a[int((n + 1) / 2)]
}
{ n++; for (k = 1; k <= 24; k++) v[k, n] = $k }
END {
	# fields: rate of figure f at 2f-1, cpu at 2f (f = 1..8); pings at 17, 18
	for (f = 1; f <= 8; f++) {
		for (i = 1; i <= n; i++) t[i] = v[2 * f - 1, i]; rate[f] = med(t, n)
		for (i = 1; i <= n; i++) t[i] = v[2 * f, i]; cpu[f] = med(t, n)
		b = (f <= 3) ? 1 : 4
		for (i = 1; i <= n; i++) t[i] = v[2 * f - 1, i] / v[2 * b - 1, i]; q[f] = med(t, n)
		for (i = 1; i <= n; i++) t[i] = (v[2 * f, i] > 0) ? v[2 * b, i] / v[2 * f, i] : 0; qc[f] = med(t, n)
	}
	for (i = 1; i <= n; i++) t[i] = v[19, i]; rr = med(t, n)
	for (i = 1; i <= n; i++) t[i] = v[20, i]; rc = med(t, n)
	for (i = 1; i <= n; i++) t[i] = v[19, i] / v[1, i]; rq = med(t, n)
	for (k = 21; k <= 24; k++) { for (i = 1; i <= n; i++) t[i] = v[k, i]; pm[k] = med(t, n) }
	for (i = 1; i <= n; i++) t[i] = v[17, i]; np = med(t, n)
	for (i = 1; i <= n; i++) t[i] = v[18, i]; cp = med(t, n)
	printf "nginx, 1 worker, wrk -c%d, %d rounds of %d s each (interleaved), medians; %d events per streamed answer\n", conns, rounds, secs, ev
	printf "%-26s %12s %12s %7s %7s %12s %7s %7s\n", "", "proxy_pass", "cosocket", "ratio", "cpu r.", "curl", "ratio", "cpu r."
	printf "%-26s %12.0f %12.0f %6.2fx %6.2fx %12.0f %6.2fx %6.2fx\n", "converse calls/s", rate[1], rate[2], q[2], qc[2], rate[3], q[3], qc[3]
	printf "%-26s %12.0f %12.0f %6.2fx %6.2fx\n", "transport alone calls/s", rate[1], rr, rq, (rc > 0 ? cpu[1] / rc : 0)
	printf "%-26s %12.0f %12.0f %6.2fx %6.2fx %12.0f %6.2fx %6.2fx\n", "stream events/s, decoded", rate[4] * ev, rate[5] * ev, q[5], qc[5], rate[6] * ev, q[6], qc[6]
	printf "%-26s %12.0f %12.0f %6.2fx %6.2fx %12.0f %6.2fx %6.2fx\n", "stream events/s, SSE out", rate[4] * ev, rate[7] * ev, q[7], qc[7], rate[8] * ev, q[8], qc[8]
	printf "worker CPU per request (us): converse proxy_pass %.0f, cosocket %.0f (transport alone %.0f), curl %.0f; stream proxy_pass %.0f, cosocket decoded %.0f / SSE %.0f, curl decoded %.0f / SSE %.0f\n", cpu[1], cpu[2], rc, cpu[3], cpu[4], cpu[5], cpu[7], cpu[6], cpu[8]
	printf "%d paced streams (20 ms/event, %d s) beside /ping on one connection, same worker:\n", conns, secs
	printf "  cosocket: %.0f streams/s, %d pings answered, p99 %s\n", pm[21], pm[23], (np < 0 ? "-" : np " ms")
	printf "  curl:     %.0f streams/s, %d pings answered, p99 %s\n", pm[22], pm[24], (cp < 0 ? "-" : cp " ms")
}' "$tmp/r"
