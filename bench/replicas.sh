#!/usr/bin/env bash
# Two `server` replicas on one PostgreSQL (the first one's embedded), driven by `scaletest run --url A --url B`: chats
# spread over both and each streams from the other, so every part a viewer gets crossed replicas.
#   bench/replicas.sh [CHATS] [TURNS] [extra scaletest flags…]
# Prints the scaletest's text report (parts per replica pair, relay latency) and exits with its code.
set -euo pipefail
chats=${1:-1000}
turns=${2:-5}
shift $(( $# >= 2 ? 2 : $# ))
bin="$(cd "$(dirname "$0")/.." && pwd)/bin/run.js"
dir=$(mktemp -d)
# As root, the embedded PostgreSQL runs as the postgres user, which must reach the data dir.
chmod 755 "$dir"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $dir" >&2 || rm -rf "$dir"
}
trap cleanup EXIT
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
up() { for _ in $(seq 1 300); do curl -fsS "$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "no answer from $1" >&2; return 1; }

llm=$(free_port); a=$(free_port); b=$(free_port)
common=(--chat-provider openai-compat --llm-base-url "http://127.0.0.1:$llm/v1" --webpush-allow-insecure-endpoints --log-format json --log-level warn)
"$bin" server --data-dir "$dir/a" --http-address "127.0.0.1:$a" "${common[@]}" >"$dir/a.log" 2>&1 &
pids+=($!)
up "http://127.0.0.1:$a"
pg=$("$bin" server postgres-builtin-url --data-dir "$dir/a")
"$bin" server --data-dir "$dir/b" --postgres-url "$pg" --http-address "127.0.0.1:$b" "${common[@]}" >"$dir/b.log" 2>&1 &
pids+=($!)
up "http://127.0.0.1:$b"
token=$("$bin" users create "bench-$RANDOM" --postgres-url "$pg" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).token))')
"$bin" scaletest run --url "http://127.0.0.1:$a" --url "http://127.0.0.1:$b" --token "$token" --llm-address "127.0.0.1:$llm" \
  --chats "$chats" --turns "$turns" --threshold 'part_gaps.count==0' --threshold 'part_duplicates.count==0' "$@"
