from django.contrib import admin
from django.shortcuts import redirect
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from checkout import api as checkout_api
from checkout import promo_api
from webhooks import inbound

from . import api as events_api
from . import team_views
from .operations import erasure_api
from .views import home

api_v1 = [
    path("events", events_api.EventList.as_view(), name="events"),
    path("events/<str:event_id>", events_api.EventDetail.as_view(), name="event"),
    path("events/<str:event_id>/promo_codes", promo_api.PromoCodeList.as_view(), name="promo-codes"),
    path("events/<str:event_id>/promo_codes/<str:code_id>", promo_api.PromoCodeDetail.as_view(), name="promo-code"),
    path("checkout/sessions", checkout_api.SessionList.as_view(), name="sessions"),
    path("checkout/sessions/<str:session_id>", checkout_api.SessionDetail.as_view(), name="session"),
    path("checkout/sessions/<str:session_id>/expire", checkout_api.SessionExpire.as_view(), name="session-expire"),
    path("", include("webhooks.api_urls")),
    path("attendees/erase", erasure_api.AttendeeErase.as_view(), name="attendees-erase"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file: no inline script for the CSP to refuse.
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the attendee's language switcher
    path("team/join/<str:token>/", team_views.join, name="team_join"),  # an invitation's link
    # Provider webhooks forwarded to the API domain: a plain view with its own shared secret,
    # outside DRF's API-key authentication (webhooks.inbound.api_provider_webhook).
    path("v1/webhooks/payments/<str:provider>", inbound.api_provider_webhook, name="api_provider_webhook"),
    path("v1/", include((api_v1, "api"))),
    path("api/webhooks/", include("webhooks.inbound_urls")),
    path("", include("checkout.urls")),
    path("", include("payments.urls")),
    path("favicon.ico", lambda request: redirect("/static/favicon.svg")),
]
