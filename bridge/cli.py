"""The `scorebridge` command: argument parsing only; every command calls the library."""

import argparse
import sys

from bridge import __version__
from bridge.errors import BadInput


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scorebridge", description=__doc__)
    parser.add_argument("--version", action="version", version=f"scorebridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Each concern registers its own sub-commands: register(subparsers) adds parsers whose
    # `func(args) -> int` default runs the command.
    from bridge.music import cli as music_cli
    music_cli.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BadInput as exc:
        print(f"scorebridge: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("scorebridge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
