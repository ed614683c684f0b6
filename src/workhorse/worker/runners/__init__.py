"""How one task executes: a Python callable in-process, or a child process."""
