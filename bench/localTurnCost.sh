#!/usr/bin/env bash
# What a turn costs when every viewer is on the replica that runs it, for two trees side by side in the same minutes:
# the in-process scaletest (one replica: every stream is local), alternating old/new runs.
#   bench/localTurnCost.sh OLD_TREE [NEW_TREE] [CHATS] [TURNS] [RUNS]
# Each tree must be built (npm run build). Prints turns/s, queries, pubsub notices and process CPU (daemon and its
# client thread together: the client load is the same in both trees) per turn.
set -euo pipefail
old=${1:?usage: bench/localTurnCost.sh OLD_TREE [NEW_TREE] [CHATS] [TURNS] [RUNS]}
new=${2:-.}
chats=${3:-1000}
turns=${4:-5}
runs=${5:-2}
printf '%-5s %-4s %9s %11s %13s %13s\n' tree run 'turns/s' 'queries/t' 'notices/t' 'cpu ms/t'
for i in $(seq 1 "$runs"); do
  for tree in "$old" "$new"; do
    name=$([ "$tree" = "$old" ] && echo old || echo new)
    out=$(mktemp)
    # bash's own `time`: user and system CPU seconds of the run, children included.
    cpu=$( { TIMEFORMAT='%U %S'; time "$tree/bin/run.js" scaletest run --chats "$chats" --turns "$turns" --json >"$out" 2>/dev/null; } 2>&1 | tail -1)
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").split("\n")[0]);
      const [u, s] = process.argv[2].split(" ").map(Number);
      const t = r.turns.completed;
      console.log([process.argv[3].padEnd(5), process.argv[4].padEnd(4), r.turns.perSecond.toFixed(1).padStart(9),
        r.queries.perTurn.toFixed(3).padStart(11), (r.pubsub.publishes / t).toFixed(3).padStart(13),
        (((u + s) * 1000) / t).toFixed(3).padStart(13)].join(" "));
    ' "$out" "$cpu" "$name" "$i"
    rm -f "$out"
  done
done
