"""The API token endpoint behind django-axes' lockout, with a clear JSON message.

Django's authenticate() swallows axes' PermissionDenied and DRF's serializer would then say only
"Unable to log in", so the lockout is checked here first and answered as 429 with the reason.
Failed attempts are recorded by axes through Django's user_login_failed signal, as for /login/.
"""

from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_lockout_message
from django.conf import settings
from rest_framework import status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response


class ThrottledObtainAuthToken(ObtainAuthToken):
    def post(self, request, *args, **kwargs):
        username = request.data.get("username") if hasattr(request.data, "get") else None
        credentials = {"username": username if isinstance(username, str) else ""}
        if settings.AXES_ENABLED and not AxesProxyHandler.is_allowed(request, credentials):
            return Response(
                {"message": get_lockout_message(), "extra": {"locked_out": True}},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        return super().post(request, *args, **kwargs)


obtain_auth_token = ThrottledObtainAuthToken.as_view()
