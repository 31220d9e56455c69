"""docker-compose.yml is valid Compose and every path it names exists."""

import shutil
import subprocess
from pathlib import Path

import compose
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"


def _compose_binary() -> str | None:
    # The package's console script wraps the Go binary and hides its exit code: call the binary.
    shipped = Path(compose.__file__).parent / "docker-compose"
    if shipped.is_file():
        return str(shipped)
    return shutil.which("docker-compose")


def test_compose_file_validates_with_compose_v2():
    binary = _compose_binary()
    if binary is None:
        pytest.skip("no Compose v2 binary available")
    env = {"SECRET_KEY": "x", "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config", "-q"], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stderr
    # A broken file must fail, or the check above proves nothing.
    broken = COMPOSE_FILE.with_name(".compose-broken.yml")
    broken.write_text(COMPOSE_FILE.read_text().replace("image: redis:7", "image: [redis"))
    try:
        bad = subprocess.run(
            [binary, "-f", str(broken), "config", "-q"], capture_output=True, text=True, env=env
        )
    finally:
        broken.unlink()
    assert bad.returncode != 0


def test_compose_services_and_referenced_paths():
    spec = yaml.safe_load(COMPOSE_FILE.read_text())
    services = spec["services"]
    assert {"web", "worker", "worker-gpu", "beat", "postgres", "redis"} <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", f"{name} is not restarted"
        build = service.get("build")
        if build:
            context = REPO / build.get("context", ".")
            assert context.is_dir()
            assert (context / build.get("dockerfile", "Dockerfile")).is_file()
    gpu = services["worker-gpu"]
    assert (
        gpu["command"][:5] == ["celery", "-A", "config", "worker", "-Q"]
        and gpu["command"][5] == "gpu"
    )
    assert "--concurrency=1" in gpu["command"] and "--prefetch-multiplier=1" in gpu["command"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia"
    # Everything the Dockerfiles COPY exists in the repository.
    for dockerfile in ("Dockerfile", "Dockerfile.gpu"):
        for line in (REPO / dockerfile).read_text().splitlines():
            if line.startswith("COPY ") and "--from" not in line:
                for src in line.split()[1:-1]:
                    assert (REPO / src).exists(), f"{dockerfile}: {src} missing"
