"""{% can_create_projects as flag %}: whether to offer "New project" on the project list."""

from django import template

from console.selectors import user_can_create_projects

register = template.Library()


@register.simple_tag(takes_context=True)
def can_create_projects(context) -> bool:
    return user_can_create_projects(user=context["request"].user)
