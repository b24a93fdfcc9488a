"""API authentication: ``Authorization: Bearer <api key>``, scoped to the key's organization."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from .models import ApiKey


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme != self.keyword or not key.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        api_key = ApiKey.authenticate(key.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        request.organization = api_key.organization
        return (None, api_key)

    def authenticate_header(self, request):
        return self.keyword


class HasOrganization(permissions.BasePermission):
    """Every API call acts for exactly one organization: the key's."""

    def has_permission(self, request, view):
        return getattr(request, "organization", None) is not None


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "ievents.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An organization API key."}
