"""``/v1/events/{id}/gate`` and its actions (``gate_api``)."""

from django.urls import path

from . import gate_api as api

urlpatterns = [
    path("events/<str:event_id>/gate", api.GateDetail.as_view(), name="event-gate"),
    path("events/<str:event_id>/gate/rotate_secret", api.GateRotateSecret.as_view(), name="event-gate-rotate-secret"),
    path("events/<str:event_id>/gate/test", api.GateTest.as_view(), name="event-gate-test"),
]
