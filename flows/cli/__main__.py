"""`python -m flows.cli`: the same as the `solvency` command."""

from flows.cli import main

main()
