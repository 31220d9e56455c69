"""Turn ApplicationError raised by a page view into a page with the message and right status,
and a dependency that is down (PostgreSQL, Redis, the broker) into a 503 "temporarily
unavailable" instead of a 500."""

import logging
import sys

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader

from .errors import ApplicationError

log = logging.getLogger(__name__)

UNAVAILABLE = (
    "AltPref is temporarily unavailable: a service it depends on is not answering. Nothing you "
    "saved before is lost; try again in a minute."
)


def _dependency_errors() -> tuple[type[BaseException], ...]:
    import kombu.exceptions
    import redis.exceptions
    from django.db import InterfaceError, OperationalError

    errors = (
        OperationalError,
        InterfaceError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        kombu.exceptions.OperationalError,
    )
    try:  # the rating fast path's prepared statements use psycopg directly (core.db)
        import psycopg

        errors += (psycopg.OperationalError, psycopg.InterfaceError)
    except ImportError:
        pass
    return errors


def is_dependency_down(exc: BaseException | None) -> bool:
    return isinstance(exc, _dependency_errors())


def unavailable_response(request) -> HttpResponse:
    """The 503 answer: JSON for the API, the app's own page otherwise. Rendered without the
    request's context processors, which would query the database that may be the one down."""
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"message": UNAVAILABLE, "extra": {"code": "unavailable"}}, status=503
        )
    else:
        html = loader.render_to_string("503.html", {"message": UNAVAILABLE})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = "30"
    return response


def server_error(request, *args, **kwargs):
    """handler500: a dependency failure raised outside a view (sessions, auth middleware) is a
    503 too; anything else is Django's plain 500."""
    if is_dependency_down(sys.exc_info()[1]):
        return unavailable_response(request)
    from django.views.defaults import server_error as django_server_error

    return django_server_error(request, *args, **kwargs)


class ApplicationErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_dependency_down(exception):
            log.warning("%s %s: dependency down: %r", request.method, request.path, exception)
            return unavailable_response(request)
        if isinstance(exception, ApplicationError) and not request.path.startswith("/api/"):
            return render(
                request,
                "error.html",
                {"message": exception.message, "status": exception.status_code},
                status=exception.status_code,
            )
        return None
