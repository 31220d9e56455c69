"""Template helpers for the rating pages: Markdown guidelines rendered safely, and untrusted
text (posts, alt-texts) shown so that what it says is what it looks like."""

import re
from functools import lru_cache

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe
from markdown_it import MarkdownIt

from annotate.checks import _BIDI, BIDI_CONTROLS, char_count, hostile_text_findings

register = template.Library()

# "js-default" is CommonMark with raw HTML off: any HTML in the guidelines is escaped, and
# link targets such as javascript: are refused by the parser's link validation.
_md = MarkdownIt("js-default")
_HEADING = re.compile(r"<(/?)h([1-6])\b")
# Texts longer than this (code points, the one counting rule) are clamped with an expander.
CLAMP_CHARS = 280


@register.filter
def markdown_safe(text: str, shift: int = 0) -> str:
    """Guidelines as HTML; `shift` moves their headings down (2: an h1 becomes an h3), for
    pages where they sit under the page's own one h1."""
    return _render(text or "", int(shift))


@lru_cache(maxsize=64)
def _render(text: str, shift: int) -> str:
    # The guidelines are rendered on every judge page and rarely change: keyed by their text.
    html = _md.render(text)
    if shift:
        html = _HEADING.sub(lambda m: f"<{m[1]}h{min(6, int(m[2]) + shift)}", html)
    return mark_safe(html)  # noqa: S308 - html=False escapes all raw HTML


def _control(match) -> str:
    name = BIDI_CONTROLS[match[0]]
    return f'<span class="bidi-ctl" title="hidden direction control U+{ord(match[0]):04X}">[{name}]</span>'


@register.filter(is_safe=False)
def shown_text(text: str) -> str:
    """Escaped, with every bidirectional control character replaced by a visible, named mark:
    such a character would otherwise reorder what the rater sees (RLO shows "EXE.txt" as
    "txt.EXE"). The element around the text isolates its direction (dir="auto" / <bdi>)."""
    text = escape(text or "")
    if _BIDI.search(text):
        text = _BIDI.sub(_control, text)
    return mark_safe(text)  # noqa: S308 - escaped above; only our own spans added


@register.filter
def is_long(text: str) -> bool:
    return char_count(text or "") > CLAMP_CHARS


@register.filter
def text_flags(text: str) -> list:
    """Warnings for hostile text (direction controls, markup, far too long)."""
    return hostile_text_findings(text or "")


@register.simple_tag
def keymap_rows(settings=None):
    """(action, key, what it does) for the rater's keys (defaults when not known)."""
    from preferences.rating.keyprefs import DEFAULT_KEYS

    keys = (settings or {}).get("keys") or {}
    return [(a, keys.get(a, d), what) for a, (d, what) in DEFAULT_KEYS.items()]


@register.simple_tag
def text_block(text, box_id, text_id, tag, css, expander, empty="", alt_text=True):
    """One untrusted text as shown on the rating pages, in one tag (the judge page renders
    three per item; as template nodes they cost more than the rest of the item): the text
    with visible direction controls inside a direction-isolated box, clamped with an expander
    when long, then its hostile-text notes."""
    text = text or ""
    body = shown_text(text)
    if tag == "blockquote":
        body = body.replace("\r\n", "\n").replace("\n", "<br>")
    attrs = f' class="{css}" id="{text_id}"' + ("" if text else " data-empty")
    long = is_long(text)
    html = (
        f'<div class="text-box{" clamp" if long else ""}" id="{box_id}" dir="auto">'
        f"<{tag}{attrs}>{body or escape(empty)}</{tag}></div>"
    )
    if long:
        html += (
            f'<button type="button" class="expander linklike" aria-expanded="false" '
            f'aria-controls="{box_id}" data-expand>{escape(expander)}</button>'
        )
    for f in hostile_text_findings(text):
        if f.key == "too-long" and not alt_text:
            continue  # a long post is no fault of the rater's; only alt-text has a length budget
        html += (
            f'<p class="flag" data-flag="{f.key}"><strong>Note:</strong> {escape(f.message)}</p>'
        )
    return mark_safe(html)  # noqa: S308 - every piece of text escaped above


@register.simple_tag
def alt_text_block(text, side):
    return text_block(
        text, f"alt-{side}-box", f"alt-{side}", "p", "alt-text", f"Show all of alt-text {side}"
    )
