"""Real-browser fixtures (a pytest plugin loaded by tests/conftest.py): Debian's Chromium
driven by pytest-playwright against the live server.

Browsers cannot be downloaded here (no `playwright install`): the pip package brings the driver,
Debian brings /usr/bin/chromium (`make browser` installs it when missing).
"""

import os
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls from a
# thread with a running loop unless told it is safe; here it is (test set-up code only).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def _chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Chromium not found: run `make browser` (apt-get install -y chromium).")
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": _chromium(),
        "headless": True,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture
def shot():
    """Save a full-page screenshot of the current screen under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str):
        page.wait_for_load_state("networkidle")  # images included
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def audit():
    """axe-core audit of the current page: no serious or critical violations."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()

    def run(page, name: str):
        results = axe.run(page)
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] for n in v["nodes"][:3])
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, f"axe on {name}:\n" + "\n".join(bad)
        return results

    return run


@pytest.fixture
def login(live_server):
    def do(page, username: str):
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill("pw-" + username)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server.url}/")

    return do
