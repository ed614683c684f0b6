"""`python -m workhorse` runs the command line."""

from workhorse.cli.main import main

main()
