#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x broker in KRaft mode, from the official jars on Maven Central.
# Usage: scripts/kafka.sh start|stop|restart|status|wipe|logs
# Environment: KAFKA_VERSION, KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_HOME_DIR (.cache/kafka),
#              KAFKA_HEAP, KAFKA_START_TIMEOUT (seconds, 120).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=${KAFKA_VERSION:-4.4.0}
PORT=${KAFKA_PORT:-9092}
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
HOME_DIR=${KAFKA_HOME_DIR:-$ROOT/.cache/kafka}
LIB=$ROOT/.cache/kafka/$VERSION/lib
DATA=$HOME_DIR/data
LOGS=$HOME_DIR/logs
PID_FILE=$HOME_DIR/kafka.pid
PROPS=$HOME_DIR/server.properties
HEAP=${KAFKA_HEAP:--Xms256m -Xmx768m}
TIMEOUT=${KAFKA_START_TIMEOUT:-120}

say() { printf 'kafka: %s\n' "$*"; }
die() { printf 'kafka: error: %s\n' "$*" >&2; exit 1; }

resolve_jars() {
  [ -f "$LIB/.complete" ] && return 0
  command -v mvn >/dev/null || die "Maven (mvn) is needed once to fetch Kafka $VERSION from Maven Central"
  say "fetching Kafka $VERSION jars from Maven Central (first start only)"
  rm -rf "$LIB"
  mvn -B -q -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$LIB" -DincludeScope=runtime >/dev/null \
    || die "Maven could not resolve org.apache.kafka:kafka_2.13:$VERSION"
  touch "$LIB/.complete"
}

java_cmd() {
  # shellcheck disable=SC2086
  java $HEAP -Djava.awt.headless=true -Dkafka.logs.dir="$LOGS" \
    -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.yaml" -cp "$LIB/*" "$@"
}

tool() {
  # Command-line tools log to stderr only; quiet unless something fails.
  java -Xmx256m -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.yaml" -Dkafka.logs.dir="$LOGS" -cp "$LIB/*" "$@"
}

write_properties() {
  mkdir -p "$DATA" "$LOGS"
  cat >"$PROPS" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Consumer groups of the next-generation protocol (KIP-848), which the worker's lanes use: a member that
# dies is noticed in 10 s rather than the default 45 s; a partition a member gives up reaches its next
# owner within a heartbeat (100 ms, not 5 s); assignments are computed on every change, not batched into
# 1 s intervals (Kafka 4.3+, KIP-1263). README "Consumer groups, deploys and failures" has the measurements.
group.consumer.heartbeat.interval.ms=100
group.consumer.min.heartbeat.interval.ms=50
group.consumer.assignment.interval.ms=0
group.consumer.session.timeout.ms=10000
group.consumer.min.session.timeout.ms=6000
auto.create.topics.enable=false
delete.topic.enable=true
num.network.threads=2
num.io.threads=4
log.retention.hours=168
log.segment.bytes=104857600
PROPS
}

is_up() {
  [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

produce_consume_check() {
  local topic=__pattern_worker_healthcheck marker
  marker="ok-$(date +%s%N)"
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" --create --if-not-exists \
    --topic "$topic" --partitions 1 --replication-factor 1 >/dev/null 2>&1 || return 1
  echo "$marker" | tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "127.0.0.1:$PORT" \
    --topic "$topic" >/dev/null 2>&1 || return 1
  tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "127.0.0.1:$PORT" --topic "$topic" \
    --from-beginning --timeout-ms 10000 2>/dev/null | grep -q "$marker"
}

start() {
  if is_up; then say "already running on 127.0.0.1:$PORT (pid $(cat "$PID_FILE"))"; return 0; fi
  command -v java >/dev/null || die "java (17 or newer) is needed"
  resolve_jars
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    # Something else listens there (another checkout's broker, say): use it if it really is Kafka.
    if produce_consume_check; then say "a broker not started here already serves 127.0.0.1:$PORT; using it"; return 0; fi
    die "port $PORT is taken by something that is not a working Kafka broker; set KAFKA_PORT"
  fi
  write_properties
  if [ ! -f "$DATA/meta.properties" ]; then
    tool kafka.tools.StorageTool format --standalone -t "$(tool kafka.tools.StorageTool random-uuid)" \
      -c "$PROPS" >/dev/null || die "formatting $DATA failed"
  fi
  local started=$SECONDS
  nohup bash -c "$(declare -f java_cmd); HEAP='$HEAP' LOGS='$LOGS' ROOT='$ROOT' LIB='$LIB'; java_cmd kafka.Kafka '$PROPS'" \
    >"$LOGS/stdout.log" 2>&1 &
  echo $! >"$PID_FILE"
  say "starting Kafka $VERSION (pid $!), logs in $LOGS/server.log"
  until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
    kill -0 "$(cat "$PID_FILE")" 2>/dev/null || die "broker exited; see $LOGS/stdout.log and $LOGS/server.log"
    [ $((SECONDS - started)) -lt "$TIMEOUT" ] || die "broker did not listen within ${TIMEOUT}s; see $LOGS/server.log"
    sleep 0.5
  done
  until produce_consume_check; do
    [ $((SECONDS - started)) -lt "$TIMEOUT" ] || die "broker does not accept produce/consume after ${TIMEOUT}s; see $LOGS/server.log"
    sleep 1
  done
  say "ready in $((SECONDS - started))s: produce and consume work"
  echo "KAFKA_BROKERS=127.0.0.1:$PORT"
}

stop() {
  if [ ! -f "$PID_FILE" ]; then say "not running"; return 0; fi
  local pid; pid=$(cat "$PID_FILE")
  if kill -0 "$pid" 2>/dev/null; then
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
      if ! kill -0 "$pid" 2>/dev/null && ! pgrep -f "kafka.Kafka $PROPS" >/dev/null; then break; fi
      sleep 0.5
    done
    pkill -KILL -f "kafka.Kafka $PROPS" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  say "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if is_up; then say "running on 127.0.0.1:$PORT"; else say "not running"; exit 3; fi ;;
  wipe) stop; rm -rf "$DATA"; say "data wiped" ;;
  logs) tail -n "${2:-100}" -f "$LOGS/server.log" ;;
  *) echo "usage: $0 start|stop|restart|status|wipe|logs" >&2; exit 2 ;;
esac
