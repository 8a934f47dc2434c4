-- Roles of a fresh Minqing database. Run once by the postgres image's entrypoint
-- (mounted into /docker-entrypoint-initdb.d), as the bootstrap superuser, connected to
-- POSTGRES_DB; it runs only when the data directory is empty. To prepare another
-- server, run it the same way: `psql -v ON_ERROR_STOP=1 -d minqing -f init.sql` with
-- OWNER_DB_PASSWORD and APP_DB_PASSWORD in the environment.
--
--   minqing_owner    LOGIN, owns the database and every object the migrations create.
--                    `minqing db migrate` connects as this role. Not a superuser.
--   minqing_runtime  NOLOGIN. The migrations grant it SELECT and INSERT on the events
--                    (and what each service needs on its own schema). They create it
--                    too, but only if it is missing: it is created here first so that
--                    the login role below can be made a member before they run.
--   minqing_app      LOGIN, member of minqing_runtime. The relay and the services
--                    connect as this role and then `SET ROLE minqing_runtime`
--                    (MINQING_DATABASE_ROLE).
--
-- Passwords come from the environment (psql's \getenv), never from this file.

\set ON_ERROR_STOP on

\getenv owner_password OWNER_DB_PASSWORD
\getenv app_password APP_DB_PASSWORD

\if :{?owner_password}
\else
    DO $$ BEGIN RAISE EXCEPTION 'init.sql: set OWNER_DB_PASSWORD'; END $$;
\endif
\if :{?app_password}
\else
    DO $$ BEGIN RAISE EXCEPTION 'init.sql: set APP_DB_PASSWORD'; END $$;
\endif

-- Created only when missing, so that running this file again is harmless.
SELECT 'CREATE ROLE minqing_runtime NOLOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'minqing_runtime')
\gexec

SELECT format('CREATE ROLE minqing_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',
              :'owner_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'minqing_owner')
\gexec

SELECT format('CREATE ROLE minqing_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L IN ROLE minqing_runtime',
              :'app_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'minqing_app')
\gexec

-- The owner of the database may create schemas in it (the migrations do) and owns
-- its public schema (PostgreSQL 15 and later: pg_database_owner).
SELECT format('ALTER DATABASE %I OWNER TO minqing_owner', current_database())
\gexec

-- Only the two Minqing logins may connect.
SELECT format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database())
\gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO minqing_owner, minqing_app', current_database())
\gexec
