"""The pages' CSS and scripts are served with DEBUG off (as `make run` and the Docker stack
run), by the app itself: without them the judge screen has no styles and no keyboard map."""

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

STATIC = Path(settings.BASE_DIR) / "static"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("css/app.css", "text/css"), ("js/keys.js", "text/javascript")],
)
def test_static_files_are_served_with_debug_off(path, content_type):
    assert not settings.DEBUG
    response = Client().get(f"/static/{path}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert b"".join(response.streaming_content) == (STATIC / path).read_bytes()


def test_a_missing_static_file_is_a_404():
    assert Client().get("/static/js/no-such-file.js").status_code == 404


def test_every_asset_the_login_page_names_is_served():
    import re

    client = Client()
    page = client.get("/login/").content.decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert any("htmx" in a for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
