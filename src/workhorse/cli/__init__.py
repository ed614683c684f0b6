"""The `workhorse` command line: up, runner, migrate, status, task, code, queue, schedule."""
