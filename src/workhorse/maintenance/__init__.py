"""Leader-only periodic services (rescuer, pruner, scheduler), one per file, each with run_once."""
