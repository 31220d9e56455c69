"""Template helpers for the rating pages: Markdown guidelines rendered safely."""

from functools import lru_cache

from django import template
from django.utils.safestring import mark_safe
from markdown_it import MarkdownIt

register = template.Library()

# "js-default" is CommonMark with raw HTML off: any HTML in the guidelines is escaped, and
# link targets such as javascript: are refused by the parser's link validation.
_md = MarkdownIt("js-default")


@register.filter
def markdown_safe(text: str) -> str:
    return _render(text or "")


@lru_cache(maxsize=64)
def _render(text: str) -> str:
    # The guidelines are rendered on every judge page and rarely change: keyed by their text.
    return mark_safe(_md.render(text))  # noqa: S308 - html=False escapes all raw HTML
