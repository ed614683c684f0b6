-- Claims and finishes rewrite fewer index entries. A status change used to move the
-- task's entry in tasks_code (project, code, status) twice per attempt and add and
-- remove a tasks_lease entry; SQLite updates only the indexes whose columns or
-- predicate a statement changes, so indexes that hold a task only while it is queued,
-- or only while it runs, cost one insert and one delete each: eight index writes per
-- attempt become five (the claim index, these two, and tasks_finished).
-- The check for capped codes with due work reads tasks_queued_code, their running
-- counts read tasks_running; the rescuer reads the running tasks' leases through
-- tasks_running (a scan of the running tasks, which the fleet's slots bound).
-- Status counts per code now read the project's rows instead of one index.
DROP INDEX tasks_code;
DROP INDEX tasks_lease;
CREATE INDEX tasks_queued_code ON tasks (project_id, code_name) WHERE status = 'queued';
CREATE INDEX tasks_running ON tasks (project_id, code_name) WHERE status = 'running';
