"""The `scorebridge` command: argument parsing only; every command calls the library."""

import argparse
import sys
from pathlib import Path

from bridge import __version__
from bridge.errors import BadInput

DEFAULT_OUT = "scorebridge-out"


def _rate(text):
    """--fps: a rate as editors write it (25, 23.976, 29.97, 30000/1001)."""
    from bridge.timebase import parse_rate
    try:
        rate, _ = parse_rate(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise argparse.ArgumentTypeError(f"not a frame rate: {text!r} ({exc})") from None
    if not 1 <= rate <= 1000:
        raise argparse.ArgumentTypeError(f"frame rate out of range (1–1000): {text}")
    return rate


def cmd_analyze(args) -> int:
    from bridge.analyze import analyze, summary
    from bridge.progress import console
    manifest, path = analyze(args.input, args.out, fps=args.fps, media_root=args.media_root,
                             progress=None if args.quiet else console("analyze"),
                             use_cache=not args.no_cache)
    if not args.quiet:
        print(summary(manifest), file=sys.stderr)
    print(path)
    return 0


def cmd_demo(args) -> int:
    from bridge.analyze import analyze, summary
    from bridge.demo import build_demo
    from bridge.progress import console
    out = Path(args.out).resolve()
    print(f"demo: building the demo edit in {out / 'media'}", file=sys.stderr)
    video, timeline = build_demo(out / "media")
    manifest, path = analyze(timeline, out, progress=console("demo"))
    print(summary(manifest), file=sys.stderr)
    print(f"demo: the edit is {timeline}\ndemo: its video is {video}\n"
          f"demo: cuts, moods and warnings are in the manifest:", file=sys.stderr)
    print(path)
    return 0


def cmd_doctor(args) -> int:
    from bridge import doctor
    return doctor.run()


def cmd_bench(args) -> int:
    import json
    from bridge.picture import bench
    results = bench.run(args.seconds)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scorebridge",
        description="Editable film-style scores for video edits: mood follows the picture, "
                    "chords land on the cuts.")
    parser.add_argument("--version", action="version", version=f"scorebridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("analyze", help="read an edit and analyse its picture: cuts and moods, no music")
    p.add_argument("input", help="OTIO/OTIOZ, CMX 3600 EDL, FCP 7 XML, FCP X XML, or a video file")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the manifest (default ./{DEFAULT_OUT})")
    p.add_argument("--media-root", help="folder to look in for media that moved (relink by file name)")
    p.add_argument("--fps", type=_rate, help="frame rate of formats that carry none (EDL)")
    p.add_argument("--no-cache", action="store_true", help="analyse again even when cached")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the manifest path")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("demo", help="build a small demo edit and run the pipeline on it")
    p.add_argument("--out", default="scorebridge-demo", help="folder for the demo (default ./scorebridge-demo)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("doctor", help="say what is installed and usable")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("bench", help="benchmarks that print their figures")
    p.add_argument("what", choices=["analysis"], help="analysis: picture analysis speed (frames/s)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each test video (default 20)")
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    p.set_defaults(func=cmd_bench)

    # The music model registers its own commands (train, eval).
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
