-- Fan-ins: queue a follow-up task when all children of a parent have finished.

-- name: insert
-- Remember what to queue after the children of a parent finish.
INSERT INTO fanins (parent_id, project_id, code_name, cluster, created_at)
VALUES (:parent_id, :project_id, :code_name, :cluster,
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0))
ON CONFLICT (parent_id) DO NOTHING;

-- name: due
-- Unfired fan-ins none of whose children is still queued or running (locked for firing).
SELECT f.parent_id, f.project_id, f.code_name, f.cluster FROM fanins f
WHERE f.fired_task_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM tasks t
                  WHERE t.parent_id = f.parent_id AND t.status IN ('queued', 'running'))
ORDER BY f.created_at
LIMIT :limit;


-- name: mark_fired
-- Record the task queued for a fan-in; applies once.
UPDATE fanins SET fired_task_id = :task_id
WHERE parent_id = :parent_id AND fired_task_id IS NULL;

-- name: get
-- One fan-in.
SELECT * FROM fanins WHERE parent_id = :parent_id;
