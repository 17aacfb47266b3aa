#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft) on 127.0.0.1, assembled from Maven Central.
#
#   scripts/kafka.sh start|stop|kill|status|logs|ensure|jars
#
# `kill` SIGKILLs the broker's JVM (a crash, for failure tests); `jars` only resolves
# the jars. The node runs alone by default; scripts/kafka-cluster.sh runs several of
# these nodes as one cluster, through the KAFKA_NODE_ID... knobs below.
#
# No Docker and no download site needed: the broker's jars are resolved once by
# Maven from scripts/kafka/pom.xml into a cache, storage is formatted once, and
# the broker runs on the installed Java 17 with a small heap.
#
# Environment:
#   KAFKA_PORT             client port (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default 9093)
#   KAFKA_DATA_DIR         logs, config, pid (default .kafka/<KAFKA_PORT>)
#   KAFKA_CACHE_DIR        the resolved jars (default ~/.cache/shop-kafka/<version>)
#   KAFKA_HEAP_OPTS        JVM heap (default -Xms512m -Xmx2g: many partitions need it)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to answer (default 90)
#   KAFKA_NODE_ID          this node's id (default 1)
#   KAFKA_QUORUM_VOTERS    the KRaft controllers, id@host:port,... (default
#                          <KAFKA_NODE_ID>@127.0.0.1:<KAFKA_CONTROLLER_PORT>: this node alone)
#   KAFKA_CLUSTER_ID       the cluster id storage is formatted with, the same on every node
#                          of a cluster (default: a random one; only used on first start)
#   KAFKA_INTERNAL_REPLICATION  replicas of the internal topics (consumer offsets,
#                          transactions, share state) and default.replication.factor
#                          (default 1); their min.insync.replicas, and the broker's
#                          default one, is min(2, that)
#
# Secured listeners, beside the plain one (which stays the inter-broker and controller
# side, and what `start` waits for), for testing the app's TLS and SASL settings:
#   KAFKA_SASL_SSL_PORT    a SASL_SSL listener on this port: TLS, then a login with
#                          SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN (default: none)
#   KAFKA_SSL_PORT         an SSL listener on this port that requires a client
#                          certificate signed by KAFKA_BROKER_TRUSTSTORE (default: none)
#   KAFKA_BROKER_KEYSTORE  the broker's PEM file: its unencrypted PKCS#8 private key, then
#                          its certificate chain (needed by either listener)
#   KAFKA_BROKER_TRUSTSTORE  PEM CA certificates that client certificates must chain to
#                          (needed by KAFKA_SSL_PORT)
#   KAFKA_SASL_USERS       name:password,... : SCRAM-SHA-256 and SCRAM-SHA-512 credentials
#                          (written when storage is formatted, so only on first start)
#                          and PLAIN logins; names and passwords of [A-Za-z0-9._-]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
pom="$here/kafka/pom.xml"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"

port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
data_dir="${KAFKA_DATA_DIR:-$root/.kafka/$port}"
cache_dir="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shop-kafka/$version}"
heap="${KAFKA_HEAP_OPTS:--Xms512m -Xmx2g}"
timeout_s="${KAFKA_START_TIMEOUT:-90}"
node_id="${KAFKA_NODE_ID:-1}"
quorum_voters="${KAFKA_QUORUM_VOTERS:-$node_id@127.0.0.1:$controller_port}"
cluster_id="${KAFKA_CLUSTER_ID:-}"
internal_rf="${KAFKA_INTERNAL_REPLICATION:-1}"
internal_min_isr=$((internal_rf < 2 ? internal_rf : 2))
sasl_ssl_port="${KAFKA_SASL_SSL_PORT:-}"
ssl_port="${KAFKA_SSL_PORT:-}"
broker_keystore="${KAFKA_BROKER_KEYSTORE:-}"
broker_truststore="${KAFKA_BROKER_TRUSTSTORE:-}"
sasl_users="${KAFKA_SASL_USERS:-}"
pid_file="$data_dir/broker.pid"
log_file="$data_dir/broker.log"

say() { echo "kafka.sh: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running_pid() {
  [[ -f "$pid_file" ]] || return 1
  local pid
  pid="$(cat "$pid_file")"
  # a zombie (killed, not yet reaped by its parent) is not running
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null &&
    ! grep -q '^[^)]*) Z' "/proc/$pid/stat" 2>/dev/null; then
    echo "$pid"
    return 0
  fi
  return 1
}

resolve_jars() {
  if [[ -f "$cache_dir/.complete" ]]; then
    return
  fi
  command -v mvn >/dev/null || { say "Maven (mvn) is needed once to fetch Kafka $version"; exit 1; }
  say "resolving Apache Kafka $version from Maven Central into $cache_dir (once)"
  mkdir -p "$cache_dir"
  mvn -q -B -f "$pom" dependency:copy-dependencies \
    -DoutputDirectory="$cache_dir/lib" -DincludeScope=runtime >&2
  touch "$cache_dir/.complete"
}

# the SASL users as name<TAB>password lines, refused unless each is name:password
sasl_user_lines() {
  local entry
  [[ -n "$sasl_users" ]] || return 0
  local IFS=,
  for entry in $sasl_users; do
    if ! [[ "$entry" =~ ^([A-Za-z0-9._-]+):([A-Za-z0-9._-]+)$ ]]; then
      say "KAFKA_SASL_USERS must be name:password,... of [A-Za-z0-9._-], got '$entry'"
      exit 2
    fi
    printf '%s\t%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
  done
}

check_secured() {
  [[ -n "$sasl_ssl_port$ssl_port" ]] || return 0
  if [[ -z "$broker_keystore" || ! -f "$broker_keystore" ]]; then
    say "a secured listener needs KAFKA_BROKER_KEYSTORE (the broker's PEM key and certificate)"
    exit 2
  fi
  if [[ -n "$ssl_port" && ( -z "$broker_truststore" || ! -f "$broker_truststore" ) ]]; then
    say "KAFKA_SSL_PORT needs KAFKA_BROKER_TRUSTSTORE (PEM CA certificates of the clients)"
    exit 2
  fi
  if [[ -n "$sasl_ssl_port" && -z "$sasl_users" ]]; then
    say "KAFKA_SASL_SSL_PORT needs KAFKA_SASL_USERS (name:password,...)"
    exit 2
  fi
  sasl_user_lines >/dev/null
}

# the listeners and their settings beyond the plain one, as server.properties lines
secured_config() {
  [[ -n "$sasl_ssl_port$ssl_port" ]] || return 0
  echo "ssl.keystore.type=PEM"
  echo "ssl.keystore.location=$broker_keystore"
  if [[ -n "$broker_truststore" ]]; then
    echo "ssl.truststore.type=PEM"
    echo "ssl.truststore.location=$broker_truststore"
  fi
  if [[ -n "$ssl_port" ]]; then
    echo "listener.name.ssl.ssl.client.auth=required"
  fi
  if [[ -n "$sasl_ssl_port" ]]; then
    local name password mechanism plain=""
    while IFS=$'\t' read -r name password; do
      plain+=" user_$name=\"$password\""
    done < <(sasl_user_lines)
    echo "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"
    for mechanism in scram-sha-256 scram-sha-512; do
      echo "listener.name.sasl_ssl.$mechanism.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
    done
    echo "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$plain;"
  fi
}

write_config() {
  local listeners="PLAINTEXT://127.0.0.1:$port" map="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if [[ -n "$sasl_ssl_port" ]]; then
    listeners+=",SASL_SSL://127.0.0.1:$sasl_ssl_port"
    map+=",SASL_SSL:SASL_SSL"
  fi
  if [[ -n "$ssl_port" ]]; then
    listeners+=",SSL://127.0.0.1:$ssl_port"
    map+=",SSL:SSL"
  fi
  mkdir -p "$data_dir/log"
  cat >"$data_dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$node_id
controller.quorum.voters=$quorum_voters
listeners=$listeners,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
listener.security.protocol.map=$map
inter.broker.listener.name=PLAINTEXT
log.dirs=$data_dir/log
num.partitions=8
default.replication.factor=$internal_rf
min.insync.replicas=$internal_min_isr
offsets.topic.replication.factor=$internal_rf
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$internal_rf
transaction.state.log.min.isr=$internal_min_isr
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=$internal_rf
share.coordinator.state.topic.min.isr=$internal_min_isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=-1
EOF
  secured_config >>"$data_dir/server.properties"
  cat >"$data_dir/log4j2.yaml" <<EOF
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
      - name: kafka.server.BrokerServer
        level: INFO
EOF
}

java_cmd() {
  # shellcheck disable=SC2086
  java $heap -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$data_dir/log4j2.yaml" -cp "$cache_dir/lib/*" "$@"
}

format_storage() {
  if [[ -f "$data_dir/log/meta.properties" ]]; then
    return
  fi
  local out
  if [[ -z "$cluster_id" ]]; then
    out="$(java_cmd kafka.tools.StorageTool random-uuid 2>&1)" || {
      say "could not make a cluster id:"; echo "$out" >&2; exit 1
    }
    cluster_id="$out"
  fi
  local scram=() name password
  while IFS=$'\t' read -r name password; do
    scram+=(--add-scram "SCRAM-SHA-256=[name=$name,password=$password]")
    scram+=(--add-scram "SCRAM-SHA-512=[name=$name,password=$password]")
  done < <(sasl_user_lines)
  out="$(java_cmd kafka.tools.StorageTool format \
    -t "$cluster_id" -c "$data_dir/server.properties" "${scram[@]}" 2>&1)" || {
    say "formatting storage in $data_dir/log failed:"; echo "$out" >&2; exit 1
  }
}

start() {
  local pid
  if pid="$(running_pid)"; then
    say "already running (pid $pid) on 127.0.0.1:$port"
    return 0
  fi
  if [[ -f "$pid_file" ]]; then
    say "removing stale pid file $pid_file"
    rm -f "$pid_file"
  fi
  check_secured
  for p in "$port" "$controller_port" $sasl_ssl_port $ssl_port; do
    if port_open "$p"; then
      say "port $p on 127.0.0.1 is in use by another process; set KAFKA_PORT/KAFKA_CONTROLLER_PORT," \
        "or point KAFKA_BOOTSTRAP_SERVERS at the broker that is there"
      exit 1
    fi
  done
  command -v java >/dev/null || { say "Java 17 is needed to run the broker"; exit 1; }
  resolve_jars
  write_config
  format_storage
  say "starting Kafka $version on 127.0.0.1:$port (data in $data_dir)"
  # exec, so the recorded pid is the JVM's own
  # shellcheck disable=SC2086
  nohup java $heap -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$data_dir/log4j2.yaml" -cp "$cache_dir/lib/*" \
    kafka.Kafka "$data_dir/server.properties" >"$log_file" 2>&1 </dev/null &
  echo $! >"$pid_file"
  local waited=0
  until port_open "$port"; do
    if ! running_pid >/dev/null; then
      say "broker exited during start; last lines of $log_file:"
      tail -n 30 "$log_file" >&2
      rm -f "$pid_file"
      exit 1
    fi
    if ((waited >= timeout_s * 2)); then
      say "broker did not answer on port $port within ${timeout_s}s; see $log_file"
      exit 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  say "ready on 127.0.0.1:$port"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    say "not running"
    rm -f "$pid_file"
    return 0
  fi
  say "stopping (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pid_file"; say "stopped"; return 0; }
    sleep 0.5
  done
  say "did not stop in 30s; killing"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pid_file"
}

crash() {
  local pid
  if ! pid="$(running_pid)"; then
    say "not running"
    rm -f "$pid_file"
    return 0
  fi
  say "killing (SIGKILL, pid $pid)"
  kill -KILL "$pid" 2>/dev/null || true
  # gone once its ports are closed too: the JVM's main thread may show as a zombie
  # while its other threads, and so its sockets, are still being torn down
  for _ in $(seq 1 100); do
    if ! running_pid >/dev/null && ! port_open "$port" && ! port_open "$controller_port"; then
      break
    fi
    sleep 0.1
  done
  rm -f "$pid_file"
}

# The make targets' "a broker, unless one answers". The broker KAFKA_BOOTSTRAP_SERVERS
# names, when it is set and KAFKA_PORT is not (docker compose's 127.0.0.1:9094, a
# cluster, a managed one): used if it answers; else started here on its port if it is
# on this host; else an error. Without it, the local broker on KAFKA_PORT.
ensure() {
  if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" && -z "${KAFKA_PORT:-}" ]]; then
    local first="${KAFKA_BOOTSTRAP_SERVERS%%,*}"
    local host="${first%:*}" named_port="${first##*:}"
    if (exec 3<>"/dev/tcp/$host/$named_port") 2>/dev/null; then
      say "a broker answers at $first (KAFKA_BOOTSTRAP_SERVERS)"
    elif [[ "$host" == "127.0.0.1" || "$host" == "localhost" ]]; then
      KAFKA_PORT="$named_port" exec "${BASH_SOURCE[0]}" ensure
    else
      say "no broker answers at $first (KAFKA_BOOTSTRAP_SERVERS); start it, or unset it" \
        "to run a local one"
      exit 1
    fi
  elif port_open "$port"; then
    say "a broker answers on 127.0.0.1:$port"
  else
    start
  fi
}

status() {
  local pid
  if pid="$(running_pid)"; then
    echo "running (pid $pid) on 127.0.0.1:$port, data in $data_dir"
  else
    echo "not running"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  kill) crash ;;
  jars) resolve_jars ;;
  status) status ;;
  logs) tail -n "${LINES_TO_SHOW:-100}" -f "$log_file" ;;
  ensure) ensure ;;
  *) echo "usage: $0 start|stop|kill|status|logs|ensure|jars" >&2; exit 2 ;;
esac
