"""Pure rules: task states, retries, leases, ids. No I/O; time comes in as `now`."""
