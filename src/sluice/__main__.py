"""``python -m sluice`` runs the command line."""

from sluice.cli.main import main

main()
