"""The wire between the daemon and its clients, in one place (docs/protocol.md for host authors).

OSC over UDP. Every address starts with PREFIX; a request's first argument is the shared token.
Requests: ping, status, score, update, cancel. Replies: pong, status, accepted, progress, ready,
done, cancelled, error (its codes: auth, bad_request, busy, stale, ...). Timelines, MIDI and audio never travel as blobs, only as paths;
options travel as one JSON object (options_json), checked here before a job is queued.

    encode("ping", token) -> bytes          decode(bytes) -> [(address, [args])]
"""

import ipaddress
import json

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from bridge.errors import BadInput
from bridge.timebase import parse_rate

PREFIX = "/scorebridge/"
MAX_TEXT = 4096  # longest path or id accepted
MAX_OPTIONS = 16384  # longest options_json accepted
OPTIONS = {"seed", "audio", "valence", "arousal", "fps", "media_root", "candidates", "key", "loudness"}


def encode(name, *args) -> bytes:
    """One OSC message to PREFIX + name; str -> 's', bool -> 'T'/'F', int -> 'i', float -> 'f'."""
    builder = OscMessageBuilder(address=PREFIX + name)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def decode(data) -> list:
    """[(address, [args])] of the messages in one datagram (a bundle may hold several);
    ValueError on bytes that are not OSC, whatever python-osc raised."""
    try:
        return [(t.message.address, list(t.message.params)) for t in OscPacket(data).messages]
    except Exception as exc:  # python-osc raises several types on garbage
        raise ValueError(f"not an OSC packet: {exc}") from None


def name_of(address):
    """The request or reply name of a ScoreBridge address ("score"), else None."""
    if isinstance(address, str) and address.startswith(PREFIX):
        return address[len(PREFIX) :]
    return None


def is_loopback(host) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RequestError(Exception):
    """A request that is answered `/scorebridge/error request_id code message`."""

    def __init__(self, code, message, request_id=""):
        super().__init__(message)
        self.code, self.message, self.request_id = code, message, request_id


def parse_options(text) -> dict:
    """options_json -> keyword arguments for bridge.score.score; RequestError when malformed."""
    if len(text) > MAX_OPTIONS:
        raise RequestError("bad_request", f"options_json is longer than {MAX_OPTIONS} characters")
    try:
        options = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise RequestError("bad_request", f"options_json is not JSON: {exc}") from None
    if not isinstance(options, dict):
        raise RequestError("bad_request", "options_json must be a JSON object")
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise RequestError(
            "bad_request", f"unknown option(s) {', '.join(map(str, unknown))}; known: {', '.join(sorted(OPTIONS))}"
        )
    out = {}
    if "seed" in options:
        seed = options["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise RequestError("bad_request", f"seed must be an integer 0..2^32-1, got {seed!r}")
        out["seed"] = seed
    if "audio" in options:
        if not isinstance(options["audio"], bool):
            raise RequestError("bad_request", f"audio must be true or false, got {options['audio']!r}")
        out["audio_out"] = options["audio"]
    for key in ("valence", "arousal"):
        if options.get(key) is not None:
            value = options[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1.0 <= value <= 1.0:
                raise RequestError("bad_request", f"{key} must be a number in [-1, 1], got {value!r}")
            out[key] = float(value)
    if options.get("fps") is not None:
        try:
            rate, _ = parse_rate(str(options["fps"]))
        except (ValueError, ZeroDivisionError, BadInput) as exc:
            raise RequestError("bad_request", f"fps: {exc}") from None
        if not 1 <= rate <= 1000:
            raise RequestError("bad_request", f"fps must be 1..1000, got {options['fps']!r}")
        out["fps"] = rate
    if options.get("media_root") is not None:
        if not isinstance(options["media_root"], str) or len(options["media_root"]) > MAX_TEXT:
            raise RequestError("bad_request", "media_root must be a folder path")
        out["media_root"] = options["media_root"]
    if options.get("key") is not None:
        from bridge.music.theory import parse_key

        if not isinstance(options["key"], str) or len(options["key"]) > 40:
            raise RequestError("bad_request", "key must be a key name such as 'E minor'")
        try:
            parse_key(options["key"])
        except ValueError as exc:
            raise RequestError("bad_request", f"key: {exc}") from None
        out["key"] = options["key"]
    if options.get("loudness") is not None:
        from bridge.render.audio import check_loudness

        try:
            out["loudness"] = check_loudness(options["loudness"])
        except ValueError as exc:
            raise RequestError("bad_request", str(exc)) from None
    if "candidates" in options:
        k = options["candidates"]
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 16:
            raise RequestError("bad_request", f"candidates must be an integer 1..16, got {k!r}")
        out["candidates"] = k
    return out
