"""{% url %} is replaced in every template by a version that remembers what it reversed
(core/templatetags/cached_url.py); it must render exactly what Django's own tag does."""

import pytest
from django.template import engines
from django.template.base import Template as DjangoTemplate
from django.urls import set_script_prefix
from django.utils.safestring import mark_safe

from core.templatetags import cached_url


def render(source, context=None):
    return engines["django"].from_string(source).render(context or {})


@pytest.fixture(autouse=True)
def empty_memory(monkeypatch):
    monkeypatch.setattr(cached_url, "_PATHS", {})
    yield
    set_script_prefix("/")


def test_the_builtin_url_tag_is_the_cached_one():
    template = engines["django"].from_string("{% url 'annotate:home' %}")
    assert isinstance(template.template, DjangoTemplate)
    assert any(isinstance(n, cached_url.CachedURLNode) for n in template.template.nodelist)


def test_same_paths_as_django_and_remembered():
    assert render("{% url 'rate:next' 7 %}") == "/projects/7/rate/next/"
    assert render("{% url 'rate:next' project_id=8 %}") == "/projects/8/rate/next/"
    assert render("{% url 'rate:submit' n %}", {"n": 9}) == "/rate/items/9/submit/"
    assert len(cached_url._PATHS) == 3
    assert render("{% url 'rate:next' 7 %}") == "/projects/7/rate/next/"
    assert len(cached_url._PATHS) == 3  # served from memory


def test_as_variable_and_other_arguments_take_djangos_tag():
    assert render("{% url 'rate:next' 7 as u %}[{{ u }}]") == "[/projects/7/rate/next/]"
    assert render("{% url 'annotate:image_file' s %}", {"s": mark_safe("ab")}) == "/images/ab"
    assert cached_url._PATHS == {}


def test_script_prefix_is_part_of_the_key():
    assert render("{% url 'annotate:home' %}") == "/"
    set_script_prefix("/altpref/")
    assert render("{% url 'annotate:home' %}") == "/altpref/"


def test_escaped_like_djangos_every_time():
    for _ in range(2):  # reversed, then from memory
        assert render("{% url 'annotate:image_file' s %}", {"s": "a&b"}) == "/images/a&amp;b"
    source = "{% autoescape off %}{% url 'annotate:image_file' s %}{% endautoescape %}"
    assert render(source, {"s": "a&b"}) == "/images/a&b"
