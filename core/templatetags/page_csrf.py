"""`{% csrf_token %}` rendered once per page: a judge page has four forms, and each of Django's
tags went through the lazy token's proxy and format_html again (about 100,000 instructions
each) for the same hidden input. Installed as a template builtin (settings.TEMPLATES), so it
replaces the default tag; the input is exactly Django's, kept for the rest of that render."""

from django import template
from django.template.defaulttags import CsrfTokenNode

register = template.Library()


class PageCsrfTokenNode(CsrfTokenNode):
    def render(self, context):
        # The render's root scope: shared by the page, the template it extends and its includes.
        memo = context.render_context.dicts[0]
        html = memo.get(PageCsrfTokenNode)
        if html is None:
            html = memo[PageCsrfTokenNode] = super().render(context)
        return html


@register.tag
def csrf_token(parser, token):
    return PageCsrfTokenNode()
