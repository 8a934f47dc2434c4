-- Roles of a fresh Minqing database. Run once by the postgres image's entrypoint
-- (mounted into /docker-entrypoint-initdb.d), as the bootstrap superuser, connected to
-- POSTGRES_DB; it runs only when the data directory is empty. To prepare another
-- server, or to upgrade one prepared by an earlier version, run it the same way:
-- `psql -v ON_ERROR_STOP=1 -d minqing -f init.sql` with the passwords below in the
-- environment. Running it again is harmless (it sets the passwords again).
--
--   minqing_owner    LOGIN, owns the database and every object the migrations create.
--                    `minqing db migrate` connects as this role. Not a superuser.
--   minqing_runtime  NOLOGIN. The shared base: the migrations grant it SELECT and INSERT
--                    on the events and what each service needs on its own schema.
--   minqing_intake, minqing_routing, minqing_notification, minqing_reporting,
--   minqing_audit    LOGIN, one per process that talks to the database (minqing_audit:
--                    the relay, whose leader runs the sealer, and the operators'
--                    `minqing audit` commands). Each is a member of minqing_runtime
--                    WITH INHERIT TRUE (its privileges) and SET FALSE (it may not become
--                    it). The event store lets each append only to the stream categories
--                    it owns (eventstore.authors, migration 0003): one service's
--                    password cannot write another's events.
--
-- Passwords come from the environment (psql's \getenv), never from this file:
-- OWNER_DB_PASSWORD, INTAKE_DB_PASSWORD, ROUTING_DB_PASSWORD, NOTIFICATION_DB_PASSWORD,
-- REPORTING_DB_PASSWORD, AUDIT_DB_PASSWORD.
--
-- Earlier versions had one login for every service, minqing_app, which may still SET
-- ROLE minqing_runtime (and so append anywhere). Once every process runs with its own
-- login, drop it: DROP ROLE minqing_app;

\set ON_ERROR_STOP on

\getenv owner_password OWNER_DB_PASSWORD
\getenv intake_password INTAKE_DB_PASSWORD
\getenv routing_password ROUTING_DB_PASSWORD
\getenv notification_password NOTIFICATION_DB_PASSWORD
\getenv reporting_password REPORTING_DB_PASSWORD
\getenv audit_password AUDIT_DB_PASSWORD

\if :{?owner_password}
\else
    DO $$ BEGIN RAISE EXCEPTION 'init.sql: set OWNER_DB_PASSWORD'; END $$;
\endif
\if :{?intake_password}
\else
    DO $$ BEGIN RAISE EXCEPTION 'init.sql: set INTAKE_DB_PASSWORD'; END $$;
\endif
\if :{?routing_password}
\else
    DO $$ BEGIN RAISE EXCEPTION 'init.sql: set ROUTING_DB_PASSWORD'; END $$;
\endif
\if :{?notification_password}
\else
    DO $$ BEGIN RAISE EXCEPTION 'init.sql: set NOTIFICATION_DB_PASSWORD'; END $$;
\endif
\if :{?reporting_password}
\else
    DO $$ BEGIN RAISE EXCEPTION 'init.sql: set REPORTING_DB_PASSWORD'; END $$;
\endif
\if :{?audit_password}
\else
    DO $$ BEGIN RAISE EXCEPTION 'init.sql: set AUDIT_DB_PASSWORD'; END $$;
\endif

-- Created only when missing, so that running this file again is harmless.
SELECT 'CREATE ROLE minqing_runtime NOLOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'minqing_runtime')
\gexec

SELECT format('CREATE ROLE minqing_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',
              :'owner_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'minqing_owner')
\gexec

-- One login per process: created, or (when the migrations of an earlier run made it a
-- NOLOGIN role) allowed to log in, with the password of the environment.
SELECT format(CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login.name)
                   THEN 'ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L'
                   ELSE 'CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L'
              END, login.name, login.password)
  FROM (VALUES ('minqing_intake', :'intake_password'),
               ('minqing_routing', :'routing_password'),
               ('minqing_notification', :'notification_password'),
               ('minqing_reporting', :'reporting_password'),
               ('minqing_audit', :'audit_password')) AS login(name, password)
\gexec

-- The privileges of minqing_runtime, without the right to become it (PostgreSQL 16+).
SELECT format('GRANT minqing_runtime TO %I WITH INHERIT TRUE, SET FALSE', name)
  FROM unnest(ARRAY['minqing_intake', 'minqing_routing', 'minqing_notification',
                    'minqing_reporting', 'minqing_audit']) AS name
\gexec

-- The owner of the database may create schemas in it (the migrations do) and owns
-- its public schema (PostgreSQL 15 and later: pg_database_owner).
SELECT format('ALTER DATABASE %I OWNER TO minqing_owner', current_database())
\gexec

-- Only the Minqing logins may connect.
SELECT format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database())
\gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO minqing_owner, minqing_intake, minqing_routing, '
              'minqing_notification, minqing_reporting, minqing_audit', current_database())
\gexec
