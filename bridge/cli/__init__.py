"""The `scorebridge` command line: argument parsing only; every command calls the library.

main.py    the parser, the product's commands (score, request, batch, serve, ...) and main()
music.py   the music model's commands (train, eval, takes)
types.py   argument types that refuse what cannot mean anything
"""

from bridge.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
