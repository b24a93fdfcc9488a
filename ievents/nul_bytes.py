"""Refuse NUL bytes in URLs before they reach a database query.

PostgreSQL text cannot hold NUL, so ``Event.objects.filter(public_id="ev_\\x00")`` is not
"no such row" but a ``DataError``: a 500 for a typo'd or hostile link. No identifier we
issue contains NUL, so a path with one names nothing (404), and a query string with one is
a bad request (400). Form fields and API bodies already refuse NUL through Django's and
DRF's validators; this covers the URL, which views read without a form.

The inbound provider routes are the exception for the query string: they record what a
provider sent (NUL replaced) before refusing it, so the organizer can see it in the log.
"""

from django.http import HttpResponseBadRequest, HttpResponseNotFound

INBOUND_PREFIXES = ("/api/webhooks/", "/v1/webhooks/payments/")


class RefuseNulBytesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path:
            return HttpResponseNotFound("Not found.", content_type="text/plain")
        if not request.path.startswith(INBOUND_PREFIXES) and _query_has_nul(request):
            return HttpResponseBadRequest("The query string contains a NUL byte.", content_type="text/plain")
        return self.get_response(request)


def _query_has_nul(request) -> bool:
    if "\x00" in request.META.get("QUERY_STRING", "") or "%00" in request.META.get("QUERY_STRING", ""):
        return any("\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists())
    return False
