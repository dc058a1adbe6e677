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

from bridge.settings import ScoreOptions

PREFIX = "/scorebridge/"
MAX_TEXT = 4096  # longest path or id accepted
MAX_OPTIONS = 16384  # longest options_json accepted


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
    """options_json -> keyword arguments for bridge.score.score, checked by
    bridge.settings.ScoreOptions; RequestError (bad_request) saying what is wrong."""
    if len(text) > MAX_OPTIONS:
        raise RequestError("bad_request", f"options_json is longer than {MAX_OPTIONS} characters")
    try:
        options = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise RequestError("bad_request", f"options_json is not JSON: {exc}") from None
    try:
        return ScoreOptions.from_mapping(options).score_kwargs()
    except ValueError as exc:
        raise RequestError("bad_request", str(exc)) from None
