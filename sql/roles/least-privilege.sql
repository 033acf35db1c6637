-- Least-privilege roles for one pattern-worker database. Run once per database as a superuser (or a
-- role with CREATEROLE that owns the database), BEFORE the first migration, connected to that database:
--   psql "postgres://admin@host/patterns" -f sql/roles/least-privilege.sql
-- Then set passwords (ALTER ROLE ... PASSWORD) or use certificate authentication, and:
--   DATABASE_URL=postgres://pattern_migrator@host/patterns  patterns migrate   (owns and changes the schema)
--   DATABASE_URL=postgres://pattern_worker@host/patterns    patterns worker    (data only, no DDL)
-- Not a migration: `patterns migrate` reads only the top level of sql/, so this file is never applied by it.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pattern_migrator') THEN
    CREATE ROLE pattern_migrator LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pattern_worker') THEN
    CREATE ROLE pattern_worker LOGIN;
  END IF;
  -- Connecting, and temporary tables (compute_pattern_analytics stages days in one): not schema DDL.
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO pattern_worker', current_database());
  -- The migrator creates the extensions (pg_trgm and btree_gin are trusted extensions) and every object.
  EXECUTE format('GRANT CONNECT, TEMPORARY, CREATE ON DATABASE %I TO pattern_migrator', current_database());
END
$$;

-- The migrator owns the schema; nobody else may create anything in it.
ALTER SCHEMA public OWNER TO pattern_migrator;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO pattern_worker;

-- The worker reads and writes rows, uses sequences and calls functions: of everything the migrator
-- creates from now on ...
ALTER DEFAULT PRIVILEGES FOR ROLE pattern_migrator IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO pattern_worker;
ALTER DEFAULT PRIVILEGES FOR ROLE pattern_migrator IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO pattern_worker;
ALTER DEFAULT PRIVILEGES FOR ROLE pattern_migrator IN SCHEMA public
  GRANT EXECUTE ON FUNCTIONS TO pattern_worker;
-- ... and of anything already there (when the roles are added to an existing database whose objects
-- the migrator owns).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO pattern_worker;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO pattern_worker;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO pattern_worker;
