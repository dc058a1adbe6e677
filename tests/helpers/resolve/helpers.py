"""Test helpers for the Resolve script: load it, start a real daemon, write a WAV."""

import importlib.util
import os
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # the checkout
SCRIPT = ROOT / "resolve_script" / "ScoreBridge.py"
FAST = {"candidates": 1}


def load_script():
    """The Resolve script, fresh, as its menu entry loads it (as Resolve would run
    ScoreBridge.py, minus `__main__`): the package scorebridge_resolve."""
    for name in [n for n in sys.modules if n == "scorebridge_resolve" or n.startswith("scorebridge_resolve.")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location("ScoreBridge", SCRIPT)
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    package = entry.scorebridge
    package.common.RETRY_SLEEP = 0.01
    return package


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon_env(base, port, token="resolve-test-token"):
    """The environment a test daemon and the script share (all state under base)."""
    env = {
        "SCOREBRIDGE_PORT": str(port),
        "SCOREBRIDGE_CONFIG": str(base / "config"),
        "SCOREBRIDGE_STATE": str(base / "state"),
        "SCOREBRIDGE_CACHE": str(base / "cache"),
        "SCOREBRIDGE_HOST": "127.0.0.1",
    }
    if token:
        env["SCOREBRIDGE_TOKEN"] = token
    env["SCOREBRIDGE_CLI"] = str(cli())
    return env


def cli():
    """The `scorebridge` command of this Python's environment: the script reaches the daemon
    through `scorebridge request`, as it does in Resolve."""
    exe = Path(sys.executable).with_name("scorebridge.exe" if os.name == "nt" else "scorebridge")
    if not exe.exists():
        raise RuntimeError(f"no {exe}: install the package (pip install -e .) to test the Resolve script")
    return exe


def ping(port, token, timeout=0.5):
    from pythonosc.osc_message_builder import OscMessageBuilder
    from pythonosc.osc_message import OscMessage

    builder = OscMessageBuilder(address="/scorebridge/ping")
    builder.add_arg(token)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(builder.build().dgram, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(65536)
        except OSError:
            return None
    message = OscMessage(data)
    return message.address, list(message.params)


def start_daemon(base, port):
    """`python -m bridge serve` on a loopback port; returns the process once it answers."""
    env = dict(os.environ, **daemon_env(base, port))
    log = open(base / "daemon.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(ROOT),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the daemon exited: " + (base / "daemon.log").read_text()[-2000:])
        reply = ping(port, env["SCOREBRIDGE_TOKEN"])
        if reply and reply[0] == "/scorebridge/pong":
            return process
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the daemon did not answer within 60 s")


def stop_process(process):
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def write_wav(path, seconds, rate=48000):
    """A silent stereo 16-bit WAV of the given length."""
    frames = int(round(seconds * rate))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0\0\0" * frames)
    return str(path)
