#!/bin/sh
# Through one nginx worker against the emulator: Converse calls/s and ConverseStream
# events/s made by the client inside the worker (cosocket transport, and libcurl), each
# next to nginx's own proxy_pass of the same request to the same upstream, measured in
# the same run, interleaved round by round (median of ROUNDS). Load generator: wrk.
# Knobs: ROUNDS (3), SECS (4 s per measurement), CONNS (32), WORDS (words in the streamed
# prompt, 200).
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-4}
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
    location = /ngx/stream { content_by_lua_block { require("bench_ngx").stream("ngx") } }
    location = /curl/stream { content_by_lua_block { require("bench_ngx").stream("curl") } }
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
for p in "/model/$MODEL/converse" /ngx/converse /curl/converse; do
	code=$(curl -s -o /dev/null -w '%{http_code}' -d "$SHORT" "http://127.0.0.1:$PORT$p")
	[ "$code" = 200 ] || { echo "bench: $p answered $code"; cat "$tmp/logs/error.log"; exit 1; }
done

rps() { # path script -> requests/s
	wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$tmp/$2.lua" "http://127.0.0.1:$PORT$1" 2>&1 |
		awk '/^Requests\/sec:/ { print $2 } /Non-2xx/ { print "ERR" > "/dev/stderr" }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

: >"$tmp/r"
r=0
while [ $r -lt "$ROUNDS" ]; do
	r=$((r + 1))
	echo "proxy_conv $(rps "/model/$MODEL/converse" short)" >>"$tmp/r"
	echo "ngx_conv $(rps /ngx/converse short)" >>"$tmp/r"
	echo "curl_conv $(rps /curl/converse short)" >>"$tmp/r"
	echo "proxy_stream $(rps "/model/$MODEL/converse-stream" long)" >>"$tmp/r"
	echo "ngx_stream $(rps /ngx/stream long)" >>"$tmp/r"
	echo "curl_stream $(rps /curl/stream long)" >>"$tmp/r"
done
get() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/r" | median; }
pc=$(get proxy_conv); nc=$(get ngx_conv); cc=$(get curl_conv)
ps=$(get proxy_stream); ns=$(get ngx_stream); cs=$(get curl_stream)
awk -v pc="$pc" -v nc="$nc" -v cc="$cc" -v ps="$ps" -v ns="$ns" -v cs="$cs" -v ev="$EVENTS" \
	-v rounds="$ROUNDS" -v secs="$SECS" -v conns="$CONNS" 'BEGIN {
	printf "nginx, 1 worker, wrk -c%d, %d rounds of %d s, median; %d events per streamed answer\n", conns, rounds, secs, ev
	printf "converse calls/s:  proxy_pass %8.0f | cosocket client %8.0f (%.2fx) | curl client %8.0f (%.2fx)\n", pc, nc, nc / pc, cc, cc / pc
	printf "stream events/s:   proxy_pass %8.0f | cosocket client %8.0f (%.2fx) | curl client %8.0f (%.2fx)\n", ps * ev, ns * ev, ns / ps, cs * ev, cs / ps
}'
