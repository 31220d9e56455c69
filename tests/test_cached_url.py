"""{% url %} is replaced in every template by a version that remembers what it reversed
(core/templatetags/cached_url.py, core/reverse.py); it must render exactly what Django's own
tag does."""

import pytest
from django.template import engines
from django.template.base import Template as DjangoTemplate
from django.urls import NoReverseMatch, path, register_converter, reverse, set_script_prefix
from django.utils.safestring import mark_safe

from core import reverse as memo
from core.reverse import path_for
from core.templatetags import cached_url


def render(source, context=None):
    return engines["django"].from_string(source).render(context or {})


@pytest.fixture(autouse=True)
def empty_memory(monkeypatch):
    monkeypatch.setattr(memo, "_PATHS", {})
    monkeypatch.setattr(memo, "_SHAPES", {})
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
    assert render("{% url 'annotate:home' %}") == "/"
    # Numbers: one shape per pattern and way of passing them, whatever the numbers.
    assert len(memo._SHAPES) == 3 and len(memo._PATHS) == 1
    assert render("{% url 'rate:next' 12345 %}") == "/projects/12345/rate/next/"
    assert render("{% url 'annotate:home' %}") == "/"
    assert len(memo._SHAPES) == 3 and len(memo._PATHS) == 1  # served from memory


def test_shapes_fill_in_like_reverse():
    cases = [
        ("rate:review_pair", (), {"project_id": 3, "pair_id": 41}),
        ("rate:review_pair", (0, 10**12), {}),
        ("rate:item", (731946285019000,), {}),  # the placeholder itself as a real id
    ]
    for _ in range(2):
        for name, args, kwargs in cases:
            assert path_for(name, args=args, kwargs=kwargs) == reverse(
                name, args=args, kwargs=kwargs
            )
    assert all(parts is not None for parts in memo._SHAPES.values())


def test_negative_numbers_and_unknown_names_raise_as_reverse_does():
    with pytest.raises(NoReverseMatch):
        path_for("rate:item", args=(-1,))
    with pytest.raises(NoReverseMatch):
        path_for("rate:nothing", args=(1,))


class PaddedConverter:
    regex = "[0-9]{6}"

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return f"{value:06d}"


register_converter(PaddedConverter, "padded")
urlpatterns = [path("padded/<padded:n>/", lambda request, n: None, name="padded")]


def test_a_converter_that_formats_numbers_falls_back_to_exact_paths(settings):
    settings.ROOT_URLCONF = __name__
    assert path_for("padded", args=(42,)) == "/padded/000042/" == reverse("padded", args=(42,))
    assert list(memo._SHAPES.values()) == [None]
    assert len(memo._PATHS) == 1


def test_as_variable_and_other_arguments_take_djangos_tag():
    assert render("{% url 'rate:next' 7 as u %}[{{ u }}]") == "[/projects/7/rate/next/]"
    assert render("{% url 'annotate:image_file' s %}", {"s": mark_safe("ab")}) == "/images/ab"
    assert memo._PATHS == {} and memo._SHAPES == {}


def test_script_prefix_is_part_of_the_key():
    assert render("{% url 'annotate:home' %}") == "/"
    set_script_prefix("/altpref/")
    assert render("{% url 'annotate:home' %}") == "/altpref/"


def test_escaped_like_djangos_every_time():
    for _ in range(2):  # reversed, then from memory
        assert render("{% url 'annotate:image_file' s %}", {"s": "a&b"}) == "/images/a&amp;b"
    source = "{% autoescape off %}{% url 'annotate:image_file' s %}{% endautoescape %}"
    assert render(source, {"s": "a&b"}) == "/images/a&b"
