"""reverse() with memory, for the paths the rating pages build on every request.

Django's reverse costs about 35 µs. A judge page links its item by id (submit, skip, undo) and
every Submit redirects to Next, so remembering exact paths alone misses on each new item. For
arguments that are all non-negative integers, this remembers the pattern's shape instead: the
path reversed once with placeholder numbers and cut around them, then filled in with the real
numbers. A shape is kept only if it gave exactly what reverse() gave for probe numbers, so a
converter that formats numbers its own way (padding, say) falls back to exact paths.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

_PATHS: dict[tuple, str] = {}
_SHAPES: dict[tuple, tuple[str, ...] | None] = {}
_MAX_PATHS = 8192  # per process; cleared when full (exact paths keep arriving)
# Digit runs no route literal contains; one per argument position.
_PLACEHOLDER = 731_946_285_019_000
_PROBE = 40_517


def path_for(view_name: str, args=(), kwargs=None, current_app: str | None = None) -> str:
    """reverse(view_name, args=args, kwargs=kwargs, current_app=current_app), remembered."""
    kwargs = kwargs or {}
    # Everything else reverse() reads: the URLconf, the script prefix, the namespace.
    where = (settings.ROOT_URLCONF, get_urlconf(), get_script_prefix(), current_app)
    values = (*args, *kwargs.values())
    if values and all(type(v) is int and v >= 0 for v in values):
        key = (view_name, len(args), tuple(kwargs), where)
        if key not in _SHAPES:
            _SHAPES[key] = _shape(view_name, len(args), tuple(kwargs), current_app)
        parts = _SHAPES[key]
        if parts is not None:
            return _fill(parts, values)
    key = (view_name, tuple(args), tuple(sorted(kwargs.items())), where)
    path = _PATHS.get(key)
    if path is None:
        path = reverse(view_name, args=args, kwargs=kwargs, current_app=current_app)
        if len(_PATHS) >= _MAX_PATHS:
            _PATHS.clear()
        _PATHS[key] = path
    return path


def _fill(parts: tuple[str, ...], values) -> str:
    out = [parts[0]]
    for value, part in zip(values, parts[1:], strict=True):
        out += (str(value), part)
    return "".join(out)


def _shape(view_name: str, n_args: int, names: tuple[str, ...], current_app):
    """The path cut around each argument, or None when the pattern cannot be filled in."""

    def build(base: int) -> str:
        numbers = [base + i for i in range(n_args + len(names))]
        return reverse(
            view_name,
            args=numbers[:n_args],
            kwargs=dict(zip(names, numbers[n_args:], strict=True)),
            current_app=current_app,
        )

    try:
        path = build(_PLACEHOLDER)
        probe = build(_PROBE)
    except NoReverseMatch:
        return None
    parts, rest = [], path
    for i in range(n_args + len(names)):
        head, found, rest = rest.partition(str(_PLACEHOLDER + i))
        if not found:
            return None
        parts.append(head)
    parts.append(rest)
    shape = tuple(parts)
    probe_values = [_PROBE + i for i in range(n_args + len(names))]
    return shape if _fill(shape, probe_values) == probe else None
