"""One error format for the whole API: ``{"error": {"code", "message", "fields"?}}``."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(exceptions.APIException):
    """A refusal with a machine-readable code, raised by API views."""

    def __init__(self, message: str, code: str, status_code: int = status.HTTP_400_BAD_REQUEST):
        super().__init__(message, code)
        self.status_code = status_code
        self.error_code = code


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("No such object.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        body = {"code": exc.error_code, "message": str(exc.detail)}
    elif isinstance(exc, exceptions.ValidationError):
        body = {"code": "invalid_request", "message": "The request is not valid.", "fields": exc.detail}
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        body = {"code": "unauthenticated", "message": str(exc.detail)}
        response.status_code = status.HTTP_401_UNAUTHORIZED
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(exc, "default_code", "error")
        body = {"code": code, "message": str(detail)}
    response.data = {"error": body}
    return response
