"""Refuse, and report, any connection or name lookup that would leave 127.0.0.1.

Put this directory on a function process's PYTHONPATH and Python imports it at startup
(the `sitecustomize` hook); the bench process calls `install()` itself. An audit hook sees
every `socket.connect` and `socket.getaddrinfo`: a non-loopback destination raises
OSError at once (so a stray call to Google fails fast instead of stalling) and writes one
`MARKER ...` line to stderr, which the bench counts. Zero marker lines is the proof that
the emulator variables really kept all traffic local.
"""

import sys

MARKER = "BENCH-NETWORK-GUARD blocked"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", None, b"127.0.0.1", b"localhost"}
blocked = []


def _destination(event, args):
    """The host a connect/getaddrinfo is aiming at, or None when it is not a network event."""
    if event == "socket.connect":
        address = args[1]
        return address[0] if isinstance(address, tuple) else None
    if event == "socket.getaddrinfo":
        return args[0]
    return None


def _guard(event, args):
    if event != "socket.connect" and event != "socket.getaddrinfo":
        return
    host = _destination(event, args)
    if host in _LOOPBACK_HOSTS or (isinstance(host, str) and host.startswith("127.")):
        return
    blocked.append(f"{event} {host!r}")
    sys.stderr.write(f"{MARKER} {event} {host!r}\n")
    raise OSError(f"{MARKER}: {host!r} is outside 127.0.0.1")


def install():
    """Idempotent: an audit hook cannot be removed, so add it once per process."""
    if not getattr(sys, "_bench_network_guard", False):
        sys.addaudithook(_guard)
        sys._bench_network_guard = True


install()
