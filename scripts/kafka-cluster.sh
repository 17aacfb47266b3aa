#!/usr/bin/env bash
# A replicated Apache Kafka (KRaft) cluster on 127.0.0.1: N nodes, each a broker and
# a controller, each run by scripts/kafka.sh on its own ports and data.
#
#   scripts/kafka-cluster.sh start|stop|status|bootstrap
#   scripts/kafka-cluster.sh kill N|start-node N|stop-node N
#
# `start` starts every node at once (a KRaft quorum needs a majority before a node
# answers) and waits for all; `bootstrap` prints the bootstrap servers
# (127.0.0.1:29092,127.0.0.1:29093,...); `kill N` SIGKILLs node N (a crash);
# `start-node N` starts node N again on its own data; `stop` stops every node.
# Point the app at it with KAFKA_BOOTSTRAP_SERVERS=$(scripts/kafka-cluster.sh bootstrap)
# and SHOP_REPLICATION_FACTOR=3.
#
# Environment:
#   KAFKA_CLUSTER_NODES  how many nodes (default 3); the internal topics and the
#                        broker default get min(3, N) replicas, min.insync.replicas 2
#   KAFKA_CLUSTER_PORT   port base (default 29092): node i (1..N) answers clients on
#                        base+i-1, its controller listens on base+100+i-1; keep them
#                        below the ephemeral range (/proc/sys/net/ipv4/ip_local_port_range,
#                        from 32768), where an outgoing connection may hold one
#   KAFKA_CLUSTER_DIR    the cluster's data: node-<i>/ per node and cluster.id, the id
#                        every node is formatted with (default .kafka/cluster-<base>)
#   KAFKA_HEAP_OPTS      each node's JVM heap (default -Xms256m -Xmx1g)
#   KAFKA_START_TIMEOUT  seconds to wait for each node (default 90)
#   KAFKA_CACHE_DIR      as for scripts/kafka.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
kafka="$here/kafka.sh"

nodes="${KAFKA_CLUSTER_NODES:-3}"
base="${KAFKA_CLUSTER_PORT:-29092}"
cluster_dir="${KAFKA_CLUSTER_DIR:-$root/.kafka/cluster-$base}"
heap="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
timeout_s="${KAFKA_START_TIMEOUT:-90}"

say() { echo "kafka-cluster.sh: $*" >&2; }

[[ "$nodes" =~ ^[1-9][0-9]*$ ]] || { say "KAFKA_CLUSTER_NODES must be a positive number, got '$nodes'"; exit 2; }
if ! [[ "$base" =~ ^[1-9][0-9]*$ ]] || ((base + 100 + nodes > 65536)); then
  say "KAFKA_CLUSTER_PORT must be a port leaving room for base+100+N-1, got '$base'"
  exit 2
fi

port_of() { echo $((base + $1 - 1)); }
controller_port_of() { echo $((base + 100 + $1 - 1)); }
dir_of() { echo "$cluster_dir/node-$1"; }

bootstrap() {
  local i servers=()
  for ((i = 1; i <= nodes; i++)); do servers+=("127.0.0.1:$(port_of "$i")"); done
  (IFS=,; echo "${servers[*]}")
}

voters() {
  local i list=()
  for ((i = 1; i <= nodes; i++)); do list+=("$i@127.0.0.1:$(controller_port_of "$i")"); done
  (IFS=,; echo "${list[*]}")
}

cluster_id() {
  # one id for every node, kept beside them so a node restarted later joins the same cluster
  local file="$cluster_dir/cluster.id" id
  if [[ ! -s "$file" ]]; then
    mkdir -p "$cluster_dir"
    # a Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with "-"
    id="-"
    while [[ "$id" == -* ]]; do
      id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    echo "$id" >"$file"
  fi
  cat "$file"
}

check_node() {
  if ! [[ "$1" =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > nodes)); then
    say "no node '$1': nodes are 1..$nodes"
    exit 2
  fi
}

# scripts/kafka.sh for node $1, with the rest of the arguments
node() {
  local i="$1"
  shift
  KAFKA_NODE_ID="$i" \
    KAFKA_PORT="$(port_of "$i")" \
    KAFKA_CONTROLLER_PORT="$(controller_port_of "$i")" \
    KAFKA_DATA_DIR="$(dir_of "$i")" \
    KAFKA_QUORUM_VOTERS="$(voters)" \
    KAFKA_CLUSTER_ID="$(cat "$cluster_dir/cluster.id" 2>/dev/null || true)" \
    KAFKA_INTERNAL_REPLICATION="$((nodes < 3 ? nodes : 3))" \
    KAFKA_HEAP_OPTS="$heap" \
    KAFKA_START_TIMEOUT="$timeout_s" \
    "$kafka" "$@"
}

running() { node "$1" status >/dev/null 2>&1; }

# wait until node $1 says it has started (its client port opens earlier, while the
# broker still catches up with the quorum's metadata)
wait_started() {
  local i="$1" log waited=0
  log="$(dir_of "$i")/broker.log"
  until grep -q "Kafka Server started" "$log" 2>/dev/null; do
    if ! running "$i"; then
      say "node $i exited during start; last lines of $log:"
      tail -n 30 "$log" >&2 || true
      return 1
    fi
    if ((waited >= timeout_s * 5)); then
      say "node $i did not finish starting within ${timeout_s}s; last lines of $log:"
      tail -n 30 "$log" >&2 || true
      return 1
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
}

# start the given nodes at once and wait for all; on a failure, stop the ones started here
start_nodes() {
  local i pids=() started=() failed=()
  "$kafka" jars # once, before the nodes start side by side
  cluster_id >/dev/null # made once, before any node is formatted with it
  for i in "$@"; do
    if running "$i"; then
      say "node $i already running on 127.0.0.1:$(port_of "$i")"
      continue
    fi
    for p in "$(port_of "$i")" "$(controller_port_of "$i")"; do
      if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        say "port $p on 127.0.0.1 (node $i) is in use by another process;" \
          "set KAFKA_CLUSTER_PORT to another base"
        exit 1
      fi
    done
    started+=("$i")
  done
  for i in "${started[@]}"; do
    { node "$i" start && wait_started "$i"; } 2>&1 | sed -u "s/^/[node $i] /" >&2 &
    pids+=($!)
  done
  local k
  for k in "${!started[@]}"; do
    # the subshell's status is sed's: check the node itself
    wait "${pids[$k]}" || true
    i="${started[$k]}"
    if ! running "$i" || ! grep -q "Kafka Server started" "$(dir_of "$i")/broker.log" 2>/dev/null; then
      failed+=("$i")
    fi
  done
  if ((${#failed[@]})); then
    say "node(s) ${failed[*]} failed to start (see above); stopping the ones started here"
    for i in "${started[@]}"; do node "$i" kill >/dev/null 2>&1 || true; done
    exit 1
  fi
}

start() {
  local all=()
  for ((i = 1; i <= nodes; i++)); do all+=("$i"); done
  start_nodes "${all[@]}"
  say "ready: $nodes node(s) at $(bootstrap) (data in $cluster_dir)"
}

stop() {
  # all at once: a node left alone would wait for a quorum that no longer exists
  local i pids=()
  for ((i = 1; i <= nodes; i++)); do
    node "$i" stop 2>&1 | sed -u "s/^/[node $i] /" >&2 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
}

status() {
  local i down=0
  for ((i = 1; i <= nodes; i++)); do
    echo "node $i: $(node "$i" status || true)"
    running "$i" || down=1
  done
  return $((down ? 3 : 0))
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  bootstrap) bootstrap ;;
  kill) check_node "${2:-}"; node "$2" kill ;;
  start-node) check_node "${2:-}"; start_nodes "$2"; say "node $2 ready on 127.0.0.1:$(port_of "$2")" ;;
  stop-node) check_node "${2:-}"; node "$2" stop ;;
  *) echo "usage: $0 start|stop|status|bootstrap|kill N|start-node N|stop-node N" >&2; exit 2 ;;
esac
