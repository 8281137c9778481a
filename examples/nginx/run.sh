#!/bin/sh
# Runs the SSE chat gateway against the offline emulator, in one command:
#   examples/nginx/run.sh            start both, stream one demo chat, serve until Ctrl-C
#   examples/nginx/run.sh --once     stream one demo chat, then stop both
# PORT=8088 by default (the listen port of examples/nginx/nginx.conf).
set -eu
cd "$(dirname "$0")/../.."
root=$(pwd)
port=${PORT:-8088}
once=0
[ "${1:-}" = "--once" ] && once=1

[ -x build/bin/bedrock-emulator ] || make -s emulator >/dev/null
[ -f build/luajit/bedrock/core.so ] || make -s LUA=luajit module >/dev/null

tmp=$(mktemp -d)
emu_pid=""
cleanup() {
	[ -f "$tmp/logs/nginx.pid" ] && nginx -p "$tmp" -c "$tmp/nginx.conf" -s stop 2>/dev/null || true
	[ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null || true
	sleep 0.2
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# the emulator on a free port, pacing its events so the stream is visible
mkfifo "$tmp/emu.out"
build/bin/bedrock-emulator --port 0 --event-delay 60 --key AKIDEMULATOR:emulator-secret >"$tmp/emu.out" &
emu_pid=$!
read -r emu_port <"$tmp/emu.out"
cat "$tmp/emu.out" >/dev/null &

mkdir -p "$tmp/logs" "$tmp/tmp"
sed "s/listen 127.0.0.1:8088;/listen 127.0.0.1:$port;/" examples/nginx/nginx.conf >"$tmp/nginx.conf"

# what the workers see (the nginx.conf names these in `env` directives)
export AWS_ACCESS_KEY_ID=AKIDEMULATOR AWS_SECRET_ACCESS_KEY=emulator-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_BEDROCK_RUNTIME="http://127.0.0.1:$emu_port"
export BEDROCK_MODEL="${BEDROCK_MODEL:-anthropic.claude-3-haiku-20240307-v1:0}"
export BEDROCK_ROOT="$root"
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_BEARER_TOKEN_BEDROCK 2>/dev/null || true
nginx -p "$tmp" -c "$tmp/nginx.conf"

i=0
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || { cat "$tmp/logs/error.log"; exit 1; }
	sleep 0.05
done

echo "gateway: http://127.0.0.1:$port/chat (emulator on port $emu_port)"
echo "\$ curl -N -d '{\"prompt\":\"Hello from nginx\"}' http://127.0.0.1:$port/chat"
curl -sN -d '{"prompt":"Hello from nginx"}' "http://127.0.0.1:$port/chat"
if [ $once = 0 ]; then
	echo "serving until Ctrl-C"
	while :; do sleep 3600; done
fi
