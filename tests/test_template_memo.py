"""Template tags that remember their output (core/templatetags/page_csrf.py, cached_static.py):
they must render exactly what Django's own tags do."""

import re

import pytest
from django.middleware.csrf import get_token
from django.template import engines
from django.templatetags.static import static
from django.test import RequestFactory

from core.templatetags import cached_static, page_csrf


def render(source, context=None, request=None):
    return engines["django"].from_string(source).render(context or {}, request=request)


def test_csrf_input_is_made_once_per_page_and_is_djangos(monkeypatch):
    made = []
    original = page_csrf.CsrfTokenNode.render
    monkeypatch.setattr(
        page_csrf.CsrfTokenNode, "render", lambda self, ctx: made.append(1) or original(self, ctx)
    )
    request = RequestFactory().get("/")
    source = (
        "<form>{% csrf_token %}</form><form>{% csrf_token %}</form>"
        "{% if 1 %}{% csrf_token %}{% endif %}"
    )
    html = render(source, request=request)
    inputs = re.findall(r'<input type="hidden" name="csrfmiddlewaretoken" value="(\w+)">', html)
    assert len(inputs) == 3 and len(set(inputs)) == 1
    assert len(made) == 1  # Django's tag ran once for the three
    # Another page gets its own (newly masked) token.
    second = render(source, request=request)
    assert inputs[0] not in second
    assert "csrfmiddlewaretoken" in second
    assert get_token(request)  # the request's secret still works


def test_csrf_tag_without_a_request_renders_nothing_like_djangos():
    assert render("{% csrf_token %}") == ""


@pytest.fixture
def empty_static_memory(monkeypatch):
    monkeypatch.setattr(cached_static, "_URLS", {})


def test_static_urls_are_djangos_and_remembered(empty_static_memory):
    source = "{% static 'css/app.css' %} {% static 'js/keys.js' as k %}{{ k }}"
    expected = f"{static('css/app.css')} {static('js/keys.js')}"
    assert render(source) == expected
    assert set(cached_static._URLS) == {"css/app.css", "js/keys.js"}
    assert render(source) == expected
    assert render("{% get_static_prefix %}") == static("")
    # `{% load static %}` still gives Django's own tag, which remembers nothing.
    cached_static._URLS.clear()
    assert render("{% load static %}{% static 'css/app.css' %}") == static("css/app.css")
    assert cached_static._URLS == {}


def test_static_url_is_escaped_where_the_template_escapes(empty_static_memory):
    assert render("{% static 'a&b.css' %}") == static("a&b.css").replace("&", "&amp;")
