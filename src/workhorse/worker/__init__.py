"""Claims and runs tasks: fetcher, runners, supervisor (heartbeat and deadlines), completer."""
