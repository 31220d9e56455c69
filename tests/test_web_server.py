"""The web tier as deployed (`python -m config.serve`, Granian), run for real: it serves pages and
static files, keeps connections alive, and survives a worker being killed."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from config.serve import web_settings

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_response(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes, bytes]:
    """One response off a kept-alive connection: (head, body, what is left after it)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before answering"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection in the middle of a response"
        rest += chunk
    return head.lower(), rest[:length], rest[length:]


def _get_twice_on_one_connection(port: int, path: str) -> list[tuple[bytes, bytes]]:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    out, buf = [], b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(request)
            head, body, buf = _read_response(sock, buf)
            out.append((head, body))
    return out


def _workers(proc: subprocess.Popen) -> list[psutil.Process]:
    return [p for p in psutil.Process(proc.pid).children() if p.is_running()]


@pytest.fixture
def server():
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_WORKERS": "2",
        "WEB_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen([sys.executable, "-m", "config.serve"], cwd=REPO, env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, "the web server exited at start-up"
            assert time.monotonic() < deadline, "the web server did not start listening"
            time.sleep(0.2)
    try:
        yield proc, port
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serves_pages_and_static_files_on_a_kept_alive_connection(server):
    proc, port = server
    for head, body in _get_twice_on_one_connection(port, "/login/"):
        assert head.startswith(b"http/1.1 200")
        assert b'name="password"' in body
    # Static files come from the same server (WhiteNoise), with DEBUG off.
    for head, body in _get_twice_on_one_connection(port, "/static/js/keys.js"):
        assert head.startswith(b"http/1.1 200")
        assert b"keydown" in body
    assert len(_workers(proc)) == 2


def test_a_killed_worker_is_replaced_and_the_server_keeps_serving(server):
    proc, port = server
    victim = _workers(proc)[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    # The other worker answers meanwhile, and a new one takes the dead one's place.
    head, _ = _get_twice_on_one_connection(port, "/login/")[0]
    assert head.startswith(b"http/1.1 200")
    deadline = time.monotonic() + 30
    while True:
        alive = [p for p in _workers(proc) if p.pid != victim.pid]
        if len(alive) == 2:
            break
        assert proc.poll() is None, "the server gave up after losing a worker"
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.2)
    for _ in range(4):
        head, _ = _get_twice_on_one_connection(port, "/login/")[0]
        assert head.startswith(b"http/1.1 200")


def test_settings_come_from_the_environment_with_deployed_defaults():
    defaults = web_settings({})
    assert (defaults.host, defaults.port) == ("0.0.0.0", 8000)
    assert defaults.workers == (os.cpu_count() or 1) and defaults.threads == 2
    assert defaults.app == "config.wsgi:application"
    told = web_settings(
        {"WEB_BIND": "127.0.0.1:9001", "WEB_WORKERS": "3", "WEB_THREADS": "1", "WEB_APP": "x:y"}
    )
    assert (told.host, told.port, told.workers, told.threads, told.app) == (
        "127.0.0.1",
        9001,
        3,
        1,
        "x:y",
    )
