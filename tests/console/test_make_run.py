"""`make run` for a newcomer: it installs no system package by itself (a fake apt-get on PATH
records any call), and the demo accounts come last, in a box, after all install and migrate
output, with passwords that work."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not Path("/usr/bin/make").exists(), reason="needs make")
def test_make_run_installs_nothing_and_prints_the_accounts_last_in_a_box(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "apt-get-called"
    for tool in ("apt-get", "apt", "sudo"):
        fake = bin_dir / tool
        fake.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\nexit 1\n')
        fake.chmod(0o755)
    venv = Path(sys.prefix)
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "CELERY_", "CACHE_URL"))
        },
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    port = _free_port()
    # -o: the venv is the one running this test, taken as installed (no pip run here).
    cmd = [
        "make",
        "--no-print-directory",
        "-o",
        f"{venv}/.installed",
        "run",
        f"VENV={venv}",
        f"PORT={port}",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "manage.py runserver" in line or time.monotonic() > deadline:
                break
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    out = "\n".join(lines)
    assert not marker.exists(), marker.read_text()
    assert "manage.py runserver" in lines[-1], out
    # The box: a rule, the lines, a rule — and then only the runserver command line.
    rules = [i for i, line in enumerate(lines) if re.fullmatch(r"\+-+\+", line)]
    assert len(rules) == 2 and rules[1] == len(lines) - 2, out
    inside = lines[rules[0] + 1 : rules[1]]
    assert all(line.startswith("| ") and line.endswith(" |") for line in inside)
    assert f"http://127.0.0.1:{port}/" in inside[0]
    accounts = dict(re.findall(r"\|\s+(\w+)\s+password\s+(\S+)\s+\|", "\n".join(inside)))
    assert set(accounts) == {"admin", "reviewer", "annotator"}
    assert any("Applying" in line or "No migrations" in line for line in lines[: rules[0]])

    check = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                # check_password, not authenticate(): django-axes' backend needs a request.
                "import django,sys; django.setup(); from django.contrib.auth.models import User;"
                "sys.exit(0 if User.objects.get(username='admin').check_password(sys.argv[1]) else 1)"
            ),
            accounts["admin"],
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
