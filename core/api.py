"""DRF plumbing: the largest id a path may name, and the exception handler that turns
ApplicationError and Django validation errors into clear 4xx bodies."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import ApplicationError

MAX_ID = 2**63 - 1  # larger path ids would overflow the database's bigint: answer 404 first


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response({"message": exc.message, "extra": exc.extra}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=getattr(exc, "message_dict", exc.messages))
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"message": str(response.data["detail"]), "extra": {}}
    elif response is not None:
        response.data = {"message": "Validation error", "extra": {"fields": response.data}}
    return response
