-- eventstore.append's statements planned once per connection, not at every call.
--
-- PL/pgSQL keeps a plan per statement, but with plan_cache_mode = auto the planner
-- compares a generic plan's estimated cost with the custom plans' and keeps planning
-- anew while the custom plans look cheaper. For the duplicate check
-- (event_id = ANY (p_event_ids)) they always do: a custom plan knows the array holds one
-- id, the generic one assumes several. Measured with pg_stat_statements
-- (track_planning) under bench/intake.py: that one statement was planned at every
-- append, 0.15 ms of planning for 0.013 ms of execution, the largest single cost of an
-- append after the insert. The generic plans are the same as the custom ones (the
-- unique index on event_id probed per id, the stream's head through
-- (stream_id, stream_version), the insert from unnest), so every statement of the
-- function, and of the row trigger it fires, runs on its generic plan. The setting
-- holds for the call only (a function's SET clause) and is restored on return.
ALTER FUNCTION eventstore.append(text, bigint, text, uuid[], text[], integer[], jsonb[],
                                 jsonb[], timestamptz[])
    SET plan_cache_mode = force_generic_plan;
