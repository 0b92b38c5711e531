"""``python -m basisdb`` runs the command line."""

from .cli import main

main()
