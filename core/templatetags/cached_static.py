"""`{% static %}` with memory: it remembers the URL of each path, so a page does not join and
quote STATIC_URL and the path again on every render. Installed as a template builtin with the
rest of Django's static library (settings.TEMPLATES): the project's templates use it without
`{% load static %}`, which would put Django's own tag back.

A static URL depends only on the settings and, with a manifest storage, on the manifest read at
start-up, so it cannot change while the process runs. Paths the storage refuses (missing from
a strict manifest) are not remembered and raise as before.
"""

from django import template
from django.templatetags.static import StaticNode
from django.templatetags.static import register as django_static

register = template.Library()
register.tags.update(django_static.tags)
register.filters.update(django_static.filters)

_URLS: dict[str, str] = {}
_MAX_URLS = 1024


class CachedStaticNode(StaticNode):
    @classmethod
    def handle_simple(cls, path):
        url = _URLS.get(path)
        if url is None:
            url = super().handle_simple(path)
            if len(_URLS) >= _MAX_URLS:
                _URLS.clear()
            _URLS[path] = url
        return url


@register.tag("static")
def do_static(parser, token):
    return CachedStaticNode.handle_token(parser, token)
