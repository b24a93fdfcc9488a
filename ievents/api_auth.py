"""API authentication: ``Authorization: Bearer <api key>``, scoped to the key's organization."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from .models import ApiKey
from .roles import CHANGE, SEE_SECRETS, VIEW, allows

# Routes whose answer carries a secret (a new or rotated signing secret; a gate created by
# PUT answers with its secret): only owner keys reach them.
SECRET_BEARING_ROUTES = frozenset({
    ("POST", "api:webhook-endpoints"),
    ("POST", "api:webhook-endpoint-rotate-secret"),
    ("PUT", "api:event-gate"),
    ("POST", "api:event-gate-rotate-secret"),
})


# The request's API key once authenticated, on the request: read once, however many times asked.
AUTHENTICATED_KEY = "authenticated_api_key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        # Once per request: the Idempotency-Key middleware authenticates a keyed POST before
        # the view runs (ievents.idempotency), and the view's DRF request reads what it found
        # (DRF's request falls back to the Django request's attributes).
        found = getattr(request, AUTHENTICATED_KEY, None)
        if found is not None:
            request.organization = found.organization
            return (None, found)
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
        setattr(request, AUTHENTICATED_KEY, api_key)
        return (None, api_key)

    def authenticate_header(self, request):
        return self.keyword


class HasOrganization(permissions.BasePermission):
    """Every API call acts for exactly one organization, the key's, as far as the key's role
    allows: viewer keys read; manager keys also write, but never reach a secret."""

    message = "This API key's role does not allow this."

    def has_permission(self, request, view):
        if getattr(request, "organization", None) is None:
            return False
        role = getattr(request.auth, "role", None)
        if request.method in permissions.SAFE_METHODS:
            return allows(role, VIEW)
        match = request.resolver_match
        if match is not None and (request.method, match.view_name) in SECRET_BEARING_ROUTES:
            return allows(role, SEE_SECRETS)
        return allows(role, CHANGE)


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "ievents.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An organization API key."}
