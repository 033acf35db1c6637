#!/usr/bin/env bash
# The local stack for development: Kafka up, a dev database migrated, topics created, the worker in the
# foreground with readable logs. DATABASE_URL and KAFKA_BROKERS override the local defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${KAFKA_BROKERS:-}" ]; then
  bash scripts/kafka.sh start
  export KAFKA_BROKERS=127.0.0.1:9092
fi

if [ -z "${DATABASE_URL:-}" ]; then
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/pattern_worker
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'pattern_worker'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE pattern_worker'
    echo "dev: created database pattern_worker"
  fi
fi

node src/cli/main.ts migrate
node src/cli/main.ts topics create >/dev/null
echo "dev: topics ready; starting the worker (Ctrl-C stops it)"
LOG_FORMAT=${LOG_FORMAT:-pretty} exec node src/cli/main.ts worker
