"""Helpers for the daemon tests: a daemon serving in a thread of the test process, and a
raw UDP peer that sends any packet and reads the replies (python-osc builds the packets, as
any OSC client would)."""

import os
import threading
import time
from contextlib import contextmanager

from pythonosc.osc_message_builder import OscMessageBuilder

from bridge.daemon import client, server


@contextmanager
def serving(config_dir):
    """(host, port, token) of a daemon on a free loopback port, its token in `config_dir`."""
    saved = {k: os.environ.get(k) for k in ("SCOREBRIDGE_CONFIG", "SCOREBRIDGE_TOKEN")}
    os.environ["SCOREBRIDGE_CONFIG"] = str(config_dir)
    os.environ.pop("SCOREBRIDGE_TOKEN", None)
    stop, ready = threading.Event(), []
    thread = threading.Thread(
        target=server.serve,
        args=("127.0.0.1", 0),
        kwargs={"ready": ready.append, "stop_event": stop, "device": "cpu"},
        daemon=True,
    )
    thread.start()
    try:
        for _ in range(400):
            if ready:
                break
            time.sleep(0.05)
        yield "127.0.0.1", ready[0], (config_dir / "token").read_text().strip()
    finally:
        stop.set()
        thread.join(timeout=15)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Peer:
    """A raw UDP client: send any packet, read the replies addressed to it."""

    def __init__(self, daemon):
        self.addr = daemon[:2]
        self.token = daemon[2]
        self.conn = client.Connection(*self.addr)

    def raw(self, data):
        self.conn.sock.sendto(data, self.addr)

    def send(self, name, *args):
        builder = OscMessageBuilder(address=name if name.startswith("/") else "/scorebridge/" + name)
        for arg in args:
            builder.add_arg(arg)
        self.raw(builder.build().dgram)

    def replies(self, until, timeout=60.0):
        """Replies until one whose name is in `until` (or the timeout): [(name, args)]."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.conn.receive(deadline - time.monotonic())
            if reply is None:
                break
            got.append(reply)
            if reply[0] in until:
                break
        return got

    def ping(self, timeout=2.0):
        self.send("ping", self.token)
        return self.replies({"pong"}, timeout)

    def close(self):
        self.conn.close()
