"""The `scorebridge` command: argument parsing only; every command calls the library."""

import argparse
import json
import os
import sys
from pathlib import Path

from bridge import __version__
from bridge import settings
from bridge.cli.types import (
    _candidates,
    _dynamics_pull,
    _energy_pull,
    _guidance,
    _int_in,
    _key,
    _key_guidance,
    _loudness,
    _number_in,
    _rate,
    _seed,
    _seeds,
    _strength,
    _unit,
    _unit_step,
)
from bridge.errors import BadInput, MissingModel

DEFAULT_OUT = "scorebridge-out"


def cmd_analyze(args) -> int:
    from bridge.analyze import analyze, summary
    from bridge.progress import console

    manifest, path = analyze(
        args.input,
        args.out,
        fps=args.fps,
        media_root=args.media_root,
        progress=None if args.quiet else console("analyze"),
        use_cache=not args.no_cache,
    )
    if not args.quiet:
        print(summary(manifest), file=sys.stderr)
    print(path)
    return 0


def cmd_score(args) -> int:
    from bridge.progress import console
    from bridge.score import load_model, score, summary

    model, info = load_model(args.device, args.model) if args.model else (None, None)
    manifest, path = score(
        args.input,
        args.out,
        device=args.device,
        model=model,
        model_info=info,
        use_cache=not args.no_cache,
        progress=None if args.quiet else console("score"),
        **_score_options(args).score_kwargs(),
    )
    if not args.quiet:
        print(summary(manifest), file=sys.stderr)
    print(path)
    return 0


def cmd_demo(args) -> int:
    from bridge.analyze import analyze, summary
    from bridge.demo import build_demo
    from bridge.progress import console
    from bridge.score import load_model, score
    from bridge.score import summary as score_summary

    out = Path(args.out).resolve()
    print(f"demo: building the demo edit in {out / 'media'}", file=sys.stderr)
    video, timeline = build_demo(out / "media")
    try:
        model, info = load_model()
    except MissingModel as exc:
        print(f"demo: {exc}\ndemo: analysing the picture only", file=sys.stderr)
        manifest, path = analyze(timeline, out, progress=console("demo"))
        print(summary(manifest), file=sys.stderr)
        print(f"demo: the edit is {timeline}\ndemo: cuts, moods and warnings are in the manifest:", file=sys.stderr)
        print(path)
        return 0
    manifest, path = score(timeline, out, model=model, model_info=info, progress=console("demo"))
    print(score_summary(manifest), file=sys.stderr)
    outputs = manifest["outputs"]
    listen = outputs["preview"] or outputs["wav"]
    print(
        f"demo: the edit is {timeline}\n"
        f"demo: watch and listen: {listen or 'no audio could be rendered here'}\n"
        f"demo: open {outputs['midi']} in a DAW (tempo map, hit markers, named tracks), "
        f"{outputs['otio']} in an editor, and look at {outputs['cue_sheet']}\n"
        f"demo: the manifest:",
        file=sys.stderr,
    )
    print(path)
    return 0


def cmd_eval_score(args) -> int:
    import json
    from bridge.score import load_model
    from bridge.eval.score import evaluate

    model, info = load_model(args.device, args.model)
    extra = {} if args.key_pull is None else {"key_pull": args.key_pull}
    extra.update({} if args.guidance is None else {"guidance": args.guidance})
    extra.update({} if args.mood_step is None else {"mood_step": args.mood_step or None})
    extra.update({} if args.energy_pull is None else {"energy_pull": args.energy_pull})
    extra.update({} if args.dynamics_pull is None else {"dynamics_pull": args.dynamics_pull})
    if args.key_guidance is not None:
        if args.key_guidance != 1.0 and not model.cfg.tonic:
            raise BadInput("--key-guidance needs a model with the tonic condition (train model --key)")
        extra["key_guidance"] = args.key_guidance
    result = evaluate(model, info, seed=args.seed, candidates=args.candidates, **extra)
    print(json.dumps(result, indent=2))
    return 0


def cmd_eval_cues(args) -> int:
    from bridge.eval import cues
    from bridge.score import load_model

    model, info = load_model(args.device, args.model)
    for path in args.edit:
        if not Path(path).exists():
            raise BadInput(f"--edit {path}: no such file")
    result = cues.run(
        model,
        info,
        seeds=args.seeds,
        out=args.out,
        reference=not args.no_reference,
        edits=args.edit,
        log=lambda line: print(line, file=sys.stderr),
    )
    return 1 if args.strict and result["cues_missing_a_floor"] else 0


def cmd_doctor(args) -> int:
    from bridge import doctor

    return doctor.run()


def cmd_bench(args) -> int:
    import json

    if args.what == "score":
        from bridge.bench.score import run

        results = run(
            seconds=args.seconds or 180.0, cuts=args.cuts or 40, device=args.device, candidates=args.candidates
        )
    elif args.what == "live":
        from bridge.bench import live as live_bench

        results = live_bench.run(
            seconds=args.seconds or 180.0,
            cuts=args.cuts or 40,
            device=args.device,
            audio=not args.no_audio,
            stems=not args.no_stems,
        )
        print(live_bench.report(results))
    elif args.what == "audio":
        from bridge.bench import audio as audio_bench

        results = audio_bench.run(seconds=args.seconds or 180.0, cuts=args.cuts or 40, device=args.device)
        print(audio_bench.report(results))
    elif args.what == "sampling":
        from bridge.bench import sampling as sample_bench

        results = sample_bench.run(busy=args.busy, runs=args.runs)
        print(sample_bench.report(results))
    elif args.what == "batch":
        from bridge.bench import batch as batch_bench

        results = batch_bench.run(
            count=args.count, seconds=args.seconds or 30.0, cuts=args.cuts or 8, device=args.device
        )
        print(batch_bench.report(results))
    elif args.what == "daemon":
        from bridge.bench import daemon as daemon_bench

        results = daemon_bench.run(seconds=args.seconds or 60.0, cuts=args.cuts or 14)
        print(daemon_bench.report(results))
    else:
        from bridge.bench import analysis as bench

        results = bench.run(args.seconds or 20.0)
    if args.json:
        print(json.dumps(results, indent=2))
    if args.out:
        from bridge import atomic
        from bridge.doctor import cpu_name, kernels

        record = {
            "what": args.what,
            "cpu": cpu_name(),
            "kernels": kernels(),
            "cores": os.cpu_count(),
            "date": __import__("datetime").date.today().isoformat(),
            "results": results,
        }
        atomic.write_text(Path(args.out), json.dumps(record, indent=1, default=str) + "\n")
        print(f"bench: figures in {args.out}", file=sys.stderr)
    return 0


def cmd_serve(args) -> int:
    import logging
    from bridge.daemon import server

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    host, port = _endpoint()
    port = port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise BadInput(f"--port must be 0..65535, got {port}")
    return server.serve(args.host or host, port, device=args.device, allow_remote=args.allow_remote)


# `scorebridge request` exit codes by error code; PROTOCOL.md lists them.
REQUEST_EXIT = {"bad_request": 2, "bad_input": 3, "unreachable": 5, "stale": 6}


def cmd_request(args) -> int:
    from bridge.daemon import client
    from bridge.progress import console

    if (args.session is None) != (args.revision is None):
        print("scorebridge: --session and --revision go together", file=sys.stderr)
        return 2
    options = _score_options(args, resolve_media_root=True).to_json()
    if args.options:  # options_json keys over the flags, checked as the daemon checks them
        try:
            extra = json.loads(args.options)
            if not isinstance(extra, dict):
                raise ValueError("not a JSON object")
            options = settings.ScoreOptions.from_mapping(dict(options, **extra)).to_json()
        except ValueError as exc:
            raise BadInput(f"--options: {exc}") from None
    shown = None if args.quiet else console("request")
    filed = client.progress_writer(args.manifest_file) if args.manifest_file else None

    def progress(fraction, stage):
        for report in (shown, filed):
            if report is not None:
                report(fraction, stage)

    def say(text):
        if not args.quiet:
            print(f"request: {text}", file=sys.stderr)
        if filed is not None:  # a host that reads FILE.progress sees it too (starting the daemon)
            filed(0.0, text)

    try:
        path = client.request(
            args.input,
            args.out,
            options,
            session=args.session,
            revision=args.revision,
            timeout=args.timeout,
            progress=progress,
            midi_ready=client.stage_writer(args.manifest_file, "midi") if args.manifest_file else None,
            wav_ready=client.stage_writer(args.manifest_file, "wav") if args.manifest_file else None,
            say=say,
            cancelled=client.cancel_file(args.manifest_file) if args.manifest_file else None,
        )
    except client.RequestFailed as exc:
        if args.manifest_file:
            client.write_result(args.manifest_file, error=exc)
        print(f"scorebridge: {exc}", file=sys.stderr)
        return REQUEST_EXIT.get(exc.code, 1)
    except KeyboardInterrupt:
        if args.manifest_file:
            client.write_result(args.manifest_file, error=client.RequestFailed("cancelled", "interrupted"))
        raise
    if args.manifest_file:
        client.write_result(args.manifest_file, path)
    print(path)
    return 0


def cmd_batch(args) -> int:
    from bridge import batch

    options = _score_options(args)
    report = batch.run(
        args.inputs,
        args.out,
        workers=args.workers,
        resume=args.resume,
        options=options,
        device=args.device,
        show=not args.quiet,
        engine=args.engine,
        address=args.address,
        worker_cpus=args.worker_cpus,
        worker_gpus=args.worker_gpus,
        retries=args.retries,
    )
    s = report["summary"]
    print(
        f"batch: {s['done']} done ({s['resumed']} from an earlier run), {s['failed']} failed, "
        f"of {s['timelines']}; report {Path(args.out).resolve() / batch.REPORT}",
        file=sys.stderr,
    )
    return 1 if s["failed"] else 0


def cmd_status(args) -> int:
    from bridge.daemon import client

    try:
        info = client.status()
    except client.RequestFailed as exc:
        print(f"scorebridge: the daemon answered {exc}", file=sys.stderr)
        return 1
    if info is None:
        host, port = _endpoint()
        print(f"scorebridge: no daemon answers on {host}:{port}", file=sys.stderr)
        return 1
    print(json.dumps(info, indent=2))
    return 0


def _endpoint():
    from bridge import config

    try:
        return config.endpoint()
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def cmd_install(args) -> int:
    import importlib

    host = importlib.import_module(f"bridge.hosts.{args.host}")
    for path in host.install(args.dest):
        print(path)
    return 0


def _score_options(args, resolve_media_root=False):
    """The ScoreOptions the flags of _music_options give."""
    media_root = args.media_root
    if media_root and resolve_media_root:  # the daemon runs elsewhere: an absolute path
        media_root = str(Path(media_root).resolve())
    return settings.ScoreOptions(
        seed=args.seed,
        audio=not args.no_audio,
        stems=not args.no_stems,
        valence=args.valence,
        arousal=args.arousal,
        fps=args.fps,
        media_root=media_root,
        key=args.key,
        loudness=args.loudness,
        candidates=args.candidates,
    )


def _music_options(p):
    """The options of every command that writes music (score, request, batch)."""
    p.add_argument("--seed", type=_seed, default=1, help="the same seed gives the same music (0..2^32-1, default 1)")
    p.add_argument("--no-audio", action="store_true", help="MIDI only: no WAV and no preview video")
    p.add_argument("--no-stems", action="store_true", help="the WAV mix without one WAV per role beside it")
    p.add_argument("--media-root", help="folder to look in for media that moved (relink by file name)")
    p.add_argument("--fps", type=_rate, help="frame rate of formats that carry none (EDL)")
    p.add_argument("--valence", type=_unit, help="valence in [-1, 1] for the whole cue (overrides the picture)")
    p.add_argument("--arousal", type=_unit, help="arousal in [-1, 1] for the whole cue (overrides the picture)")
    p.add_argument(
        "--key",
        type=_key,
        help="the cue's home key, e.g. 'E minor', 'Bb' (default: chosen from the cue's mood and edit)",
    )
    p.add_argument(
        "--loudness",
        type=_loudness,
        metavar="LUFS",
        help="where a mid-arousal cue lands, integrated (default -23, EBU R128); the whole "
        "gain staging moves with it, so calm cues stay quieter than excited ones",
    )
    p.add_argument(
        "--candidates",
        type=_candidates,
        default=4,
        metavar="K",
        help="accepted for older hosts and scripts; the layered engine draws one score",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scorebridge",
        description="Editable film-style scores for video edits: mood follows the picture, chords land on the cuts.",
    )
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

    p = sub.add_parser("score", help="score an edit: MIDI, WAV preview, scored OTIO, previews, manifest")
    p.add_argument("input", help="OTIO/OTIOZ, CMX 3600 EDL, FCP 7 XML, FCP X XML, or a video file")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the deliverables (default ./{DEFAULT_OUT})")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    _music_options(p)
    p.add_argument("--model", help="path stem of another model's weights (default: the shipped one)")
    p.add_argument("--no-cache", action="store_true", help="analyse the picture again even when cached")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the manifest path")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("eval-cues", help="MUSIC.md's measures on scored synthetic cues, beside real music")
    p.add_argument("--seeds", type=_seeds, default=[1, 2, 3], metavar="S,S,...", help="(default 1,2,3)")
    p.add_argument("--out", default="results/eval-cues.json", help="results file (default results/eval-cues.json)")
    p.add_argument("--no-reference", action="store_true", help="skip the corpus pieces (music21, mma)")
    p.add_argument(
        "--edit",
        action="append",
        default=[],
        metavar="PATH",
        help="also measure a real edit (timeline or video); repeatable",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a cue misses a floor")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--model", help="path stem of another model's weights (default: the shipped one)")
    p.set_defaults(func=cmd_eval_cues)

    p = sub.add_parser("eval-score", help="score synthetic edits and print how well the music follows them (JSON)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--candidates", type=int, default=2)
    p.add_argument(
        "--key-pull",
        type=_strength,
        metavar="S",
        help="strength of the pull toward each section's key (0: none; default: the product's)",
    )
    p.add_argument(
        "--guidance",
        type=_guidance,
        metavar="W",
        help="classifier-free guidance of the moods and cuts (1: none; default: the product's)",
    )
    p.add_argument(
        "--mood-step",
        type=_unit_step,
        metavar="D",
        help="write the music afresh where a section's valence or arousal moves by D or "
        "more (0: never; default: the product's)",
    )
    p.add_argument(
        "--key-guidance",
        type=_key_guidance,
        metavar="W",
        help="key guidance of the free notes' pitch toward each section's key, for a model "
        "with the tonic condition (1: none, the product's default)",
    )
    p.add_argument(
        "--energy-pull",
        type=_energy_pull,
        metavar="E",
        help="how hard each section's pace is pulled toward its density "
        "(0: the model's own pace; default: the product's)",
    )
    p.add_argument(
        "--dynamics-pull",
        type=_dynamics_pull,
        metavar="D",
        help="how hard each section's loudness is pulled toward its arousal's "
        "(0: the model's own loudness; default: the product's)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--model", help="path stem of another model's weights (default: the shipped one)")
    p.set_defaults(func=cmd_eval_score)

    p = sub.add_parser("demo", help="build a small demo edit and score it")
    p.add_argument("--out", default="scorebridge-demo", help="folder for the demo (default ./scorebridge-demo)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("doctor", help="say what is installed and usable")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("bench", help="benchmarks that print their figures")
    p.add_argument(
        "what",
        choices=["analysis", "score", "daemon", "live", "sampling", "audio", "batch"],
        help="analysis: picture analysis speed (frames/s); score: time to score an edit, by stage; "
        "audio: the WAV and stems of a 3-minute cue, and loudness by arousal; "
        "daemon: ping, request-to-done cold and warm, bursts of requests; "
        "live: partial re-scoring after edits vs a full re-score; "
        "sampling: the music model's tokens/s by thread count, optionally beside busy processes; "
        "batch: timelines per minute and p50/p95 per timeline, local vs Ray on one and two nodes",
    )
    p.add_argument(
        "--seconds",
        type=float,
        help="analysis: length of each test video (default 20); score: edit length (default 180); "
        "daemon: edit length (default 60)",
    )
    p.add_argument(
        "--cuts", type=int, help="score: cuts in the edit (default 40); daemon: (default 14); batch: (default 8)"
    )
    p.add_argument(
        "--count",
        type=_int_in(1, 500),
        default=12,
        metavar="N",
        help="batch: timelines scored by each engine (default 12, of 30 s each)",
    )
    p.add_argument(
        "--candidates",
        type=int,
        default=4,
        help="score: passed on as `score` takes it (the layered engine draws one score)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--no-audio", action="store_true", help="live: time MIDI-only updates (no WAV)")
    p.add_argument("--no-stems", action="store_true", help="live: the WAV mix without stems, as REAPER asks")
    p.add_argument(
        "--busy",
        type=_int_in(0, 4 * (os.cpu_count() or 1)),
        default=0,
        metavar="N",
        help="sampling: processes spinning on a core each beside it (default 0)",
    )
    p.add_argument(
        "--runs",
        type=_int_in(1, 50),
        default=5,
        metavar="N",
        help="sampling: timed runs per figure, the median printed (default 5)",
    )
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    p.add_argument("--out", metavar="FILE", help="also write the figures, with the CPU they were taken on, to FILE")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("serve", help="the OSC daemon host scripts talk to (models stay loaded)")
    p.add_argument("--host", help="address to listen on (default SCOREBRIDGE_HOST, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="UDP port (default SCOREBRIDGE_PORT, else 9451)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that is not loopback (anyone who reaches it may run jobs)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("-v", "--verbose", action="store_true", help="log every packet, not only requests")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("request", help="score an edit through the daemon (started if none answers)")
    p.add_argument("input", help="OTIO/OTIOZ, CMX 3600 EDL, FCP 7 XML, FCP X XML, or a video file")
    p.add_argument("--out", required=True, help="folder for the deliverables")
    p.add_argument("--session", help="live mode: the session this revision belongs to")
    p.add_argument("--revision", type=int, help="live mode: the edit's revision; older ones are dropped")
    p.add_argument(
        "--manifest-file",
        help="write the manifest path (or `error CODE: message`) here "
        "when done; FILE.progress holds the progress meanwhile, FILE.midi.json and "
        "FILE.wav.json each stage as it lands; writing FILE.cancel cancels the job",
    )
    p.add_argument(
        "--options",
        metavar="JSON",
        help="options as the protocol's options_json (e.g. '{\"seed\": 3}'), over the flags",
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait (default 900)")
    _music_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the manifest path")
    p.set_defaults(func=cmd_request)

    p = sub.add_parser("batch", help="score many timelines (files, folders, globs) into one folder with a report")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="timelines, folders of timelines, or glob patterns")
    p.add_argument("--out", required=True, help="folder for the results: one sub-folder per timeline")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        choices=range(1, 1025),
        metavar="N",
        help="timelines scored at once, each in its own process (local default 1; "
        "ray default: as many as the cluster holds)",
    )
    p.add_argument("--resume", action="store_true", help="skip timelines an earlier run finished")
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this machine (default); ray: actors on a Ray cluster (scorebridge[ray])",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="ray: the cluster to join ('auto': the one `ray start` runs here); "
        "without it a one-machine cluster is started on loopback for this batch",
    )
    p.add_argument(
        "--worker-cpus",
        type=_number_in(0, 256, low_open=True),
        default=None,
        metavar="C",
        help="ray: CPUs each worker reserves, and its torch threads (default 1)",
    )
    p.add_argument(
        "--worker-gpus",
        type=_number_in(0, 16),
        default=None,
        metavar="G",
        help="ray: GPUs each worker reserves, a share such as 0.25 or whole GPUs "
        "(default 0.25 where the cluster has GPUs, else 0)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        choices=range(0, 11),
        metavar="R",
        help="ray: times a timeline is tried again after its worker died (default 2)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    _music_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("status", help="what the daemon is doing (JSON)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("install", help="copy the host scripts to where REAPER or Resolve looks for them")
    p.add_argument("host", choices=["reaper", "resolve"])
    p.add_argument("--dest", help="the host's script folder (default: where it looks on this OS)")
    p.set_defaults(func=cmd_install)

    # The music model registers its own commands (train, eval).
    from bridge.cli import music

    music.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BadInput as exc:
        print(f"scorebridge: {exc}", file=sys.stderr)
        return 3
    except MissingModel as exc:
        print(f"scorebridge: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("scorebridge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
