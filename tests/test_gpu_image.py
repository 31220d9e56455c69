"""What the VLM families need installs: num2words everywhere, torchvision only in the GPU image.

The CPU machines take the local CPU torch wheel, beside which PyPI's torchvision does not import,
so torchvision must never be a plain dependency; the GPU image installs the torchvision built
for its CUDA torch (torchvision 0.N+15 goes with torch 2.N).
"""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _pin(requirements: list[str], name: str) -> str | None:
    for requirement in requirements:
        match = re.fullmatch(rf"{name}==([\w.]+)", requirement.replace(" ", ""))
        if match:
            return match.group(1)
    return None


def _dockerfile_runs() -> str:
    text = (REPO / "Dockerfile.gpu").read_text().replace("\\\n", " ")
    return "\n".join(line for line in text.splitlines() if line.startswith("RUN "))


def test_num2words_is_a_pinned_dependency():
    assert _pin(PYPROJECT["project"]["dependencies"], "num2words")


def test_torchvision_only_in_the_gpu_extra():
    dependencies = PYPROJECT["project"]["dependencies"]
    assert not any(d.lower().startswith("torchvision") for d in dependencies)
    assert _pin(PYPROJECT["project"]["optional-dependencies"]["gpu"], "torchvision")
    # make setup installs the test extra only, never the gpu one.
    makefile = (REPO / "Makefile").read_text()
    assert '-e ".[test]"' in makefile and "[gpu]" not in makefile


def test_the_gpu_image_installs_torchvision_for_its_torch():
    runs = _dockerfile_runs()
    torch = re.search(r'pip install [^\n]*"torch==(2)\.(\d+)\.\d+"', runs)
    assert torch, "Dockerfile.gpu pins no torch"
    assert re.search(r'pip install [^\n]*"?\.\[gpu\]"?', runs), "the gpu extra is not installed"
    assert runs.index("torch==") < runs.index(".[gpu]")  # CUDA torch first, then the project
    vision = _pin(PYPROJECT["project"]["optional-dependencies"]["gpu"], "torchvision")
    assert vision.split(".")[:2] == ["0", str(int(torch.group(2)) + 15)]
    makefile_torch = re.search(r'"torch==([\d.]+)"', (REPO / "Makefile").read_text()).group(1)
    assert torch.group(0).endswith(f'"torch=={makefile_torch}"')  # one torch on CPU and GPU
