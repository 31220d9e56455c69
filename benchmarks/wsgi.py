"""WSGI entry for bench_rating: loads the URLconf and the rating templates before the web server
forks its workers (config/serve.py preloads the app), so no worker pays Django's lazy
first-request imports inside the measured run."""

from django.template.loader import get_template
from django.urls import get_resolver

from config.wsgi import application

get_resolver().url_patterns  # noqa: B018 - imports every app's views now
for name in ("preferences/judge.html", "preferences/queue_empty.html", "base.html"):
    get_template(name)

__all__ = ["application"]
