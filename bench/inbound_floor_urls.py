"""The app's URLs plus ``POST /bench/floor``: a minimal Django view that does one insert.

Only ``bench_inbound_webhooks`` uses it (through ``bench.bench_inbound_webhooks:wsgi``),
as the floor the verified-webhook route is compared with: the same gunicorn, the same
middleware, the same database, the same table, one ``INSERT`` and a JSON answer.
"""

from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from webhooks.models import InboundWebhook


@csrf_exempt
def floor(request):
    InboundWebhook.objects.create(provider="floor", outcome=InboundWebhook.Outcome.IGNORED,
                                  payload=request.body[:1000].decode("utf-8", "replace"))
    return JsonResponse({"received": True})


urlpatterns = [
    path("bench/floor", floor),
    path("", include("ievents.urls")),
]
