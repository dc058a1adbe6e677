"""The daemon: a UDP link to it, and starting it when nothing answers."""

import os
import platform
import socket
import subprocess
import time

from . import paths
from .common import Failure, START_TIMEOUT
from .osc import osc_message, osc_parse
from .paths import endpoint, read_token, state_dir


class Link:
    """One UDP socket: requests go out from it and replies come back to it."""

    def __init__(self, host, port):
        try:
            family, _, _, _, address = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
        except socket.gaierror as exc:
            raise Failure("cannot find the daemon's host %r: %s" % (host, exc))
        self.address = address
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        local = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self.sock.bind((local if _is_loopback(host) else "", 0))

    def send(self, address, *args):
        try:
            self.sock.sendto(osc_message(address, *args), self.address)
        except OSError:
            pass   # nobody listening (yet): the caller's timeout says so

    def receive(self, timeout):
        """Messages that arrive within timeout seconds (after the first, whatever is queued)."""
        out = []
        self.sock.settimeout(max(timeout, 0.001))
        while True:
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                return out
            except OSError:      # Windows reports an unreachable port here
                return out
            try:
                out.extend(osc_parse(data))
            except ValueError:
                pass
            self.sock.settimeout(0.001)

    def ping(self, token, timeout=1.0):
        """(version, device) of a daemon that answers, None when none does."""
        self.send("/scorebridge/ping", token)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for address, args in self.receive(deadline - time.monotonic()):
                if address == "/scorebridge/pong":
                    return tuple(args[:2])
                if address == "/scorebridge/error" and len(args) > 1 and args[1] == "auth":
                    raise Failure("the ScoreBridge daemon at %s:%s does not accept this token: %s"
                                  % (self.address[0], self.address[1], args[2] if len(args) > 2 else ""))
        return None

    def close(self):
        self.sock.close()


def _is_loopback(host):
    return host in ("localhost", "::1") or host.startswith("127.")


def start_daemon(cli, host, port):
    """`scorebridge serve` as a process of its own that outlives this script."""
    folder = state_dir()
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        folder = os.path.expanduser("~")
    log_path = os.path.join(folder, "serve-from-resolve.log")
    env = dict(os.environ)
    for name in ("PYTHONHOME", "PYTHONPATH"):   # Resolve's own Python must not leak into the daemon's
        env.pop(name, None)
    kwargs = {"stdin": subprocess.DEVNULL, "env": env, "close_fds": True}
    if platform.system() == "Windows":
        kwargs["creationflags"] = 0x00000008 | 0x00000200   # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    with open(log_path, "ab") as log:
        try:
            process = subprocess.Popen(cli + ["serve", "--host", host, "--port", str(port)],
                                       stdout=log, stderr=subprocess.STDOUT, **kwargs)
        except OSError as exc:
            raise Failure("could not start the ScoreBridge daemon (%s serve): %s" % (" ".join(cli), exc))
    return process, log_path


def connect(view):
    """A Link to a daemon that answers (started here when none does), its token, and the
    process this script started (None when one was running)."""
    host, port = endpoint()
    link = Link(host, port)
    token = read_token()
    try:
        if token and link.ping(token):
            return link, token, None
        if not _is_loopback(host):
            raise Failure("no ScoreBridge daemon answers at %s:%d (SCOREBRIDGE_HOST): start "
                          "`scorebridge serve` there" % (host, port))
        cli = paths.find_cli()
        if cli is None:
            raise Failure("the ScoreBridge daemon is not running and the `scorebridge` command was "
                          "not found: run `scorebridge serve` in a terminal, or set SCOREBRIDGE_CLI "
                          "to its path")
        process, log_path = start_daemon(cli, host, port)
        view.say("The ScoreBridge daemon was not answering at %s:%d: started `%s serve` "
                 "(log: %s). Waiting for it..." % (host, port, " ".join(cli), log_path))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            token = read_token()      # the daemon writes it on its first start
            if token and link.ping(token, 0.5):
                view.say("The daemon is up (pid %d)." % process.pid)
                return link, token, process
            if process.poll() is not None and not (token and link.ping(token, 0.5)):
                raise Failure("the ScoreBridge daemon stopped at once (exit code %s): %s"
                              % (process.returncode, _last_line(log_path)))
            time.sleep(0.3)
        raise Failure("started the ScoreBridge daemon but it did not answer within %d s; its log: %s"
                      % (START_TIMEOUT, log_path))
    except BaseException:
        link.close()
        raise


def _last_line(path):
    try:
        with open(path, errors="replace") as stream:
            lines = [line.strip() for line in stream if line.strip()]
        return lines[-1] if lines else "see " + path
    except (IOError, OSError):
        return "see " + path
