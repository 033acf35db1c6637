#!/bin/sh
# Runs once, when the PostgreSQL volume is first created (docker-entrypoint-initdb.d). POSTGRES_USER owns
# the schema and runs the migrations; the worker logs in as WORKER_DB_USER, which may read and write rows
# but not change the schema. test/deploy/compose.test.ts runs this script against a real server.
set -eu
psql -v ON_ERROR_STOP=1 \
  -v owner="$POSTGRES_USER" -v db="$POSTGRES_DB" \
  -v worker_user="$WORKER_DB_USER" -v worker_password="$WORKER_DB_PASSWORD" \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE :"worker_user" LOGIN PASSWORD :'worker_password';
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"worker_user";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"worker_user";
-- Tables and sequences the migrations create later are usable by the worker, and nothing more.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"worker_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO :"worker_user";
SQL
