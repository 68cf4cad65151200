"""Run the `opsroute` command line with `python -m router`."""

from router.cli.main import main

main()
