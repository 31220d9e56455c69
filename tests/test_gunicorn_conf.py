"""The web tier's gunicorn settings (config/gunicorn.conf.py), run for real: every request goes
to whichever process is free, so no connection is kept alive to pin a client to one process."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):  # the server closes: the whole response, then EOF
            data += chunk
        return data


def test_each_connection_is_closed_after_its_response():
    port = _free_port()
    env = {**os.environ, "GUNICORN_WORKERS": "2", "DJANGO_SETTINGS_MODULE": "config.settings"}
    conf = REPO / "config" / "gunicorn.conf.py"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(conf), "-b", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, "gunicorn exited at start-up"
                assert time.monotonic() < deadline, "gunicorn did not start listening"
                time.sleep(0.2)
        for _ in range(3):
            head = _get(port).split(b"\r\n\r\n", 1)[0].lower()
            assert head.startswith(b"http/1.1 200")
            assert b"connection: close" in head
    finally:
        proc.terminate()
        proc.wait(timeout=20)
