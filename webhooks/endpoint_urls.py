"""``/v1/webhook_endpoints``, ``/v1/webhook_events``, ``/v1/deliveries`` (``endpoint_api``)."""

from django.urls import path

from . import endpoint_api as api

urlpatterns = [
    path("webhook_endpoints", api.EndpointList.as_view(), name="webhook-endpoints"),
    path("webhook_endpoints/<str:endpoint_id>", api.EndpointDetail.as_view(), name="webhook-endpoint"),
    path("webhook_endpoints/<str:endpoint_id>/rotate_secret", api.EndpointRotateSecret.as_view(),
         name="webhook-endpoint-rotate-secret"),
    path("webhook_endpoints/<str:endpoint_id>/test", api.EndpointTest.as_view(), name="webhook-endpoint-test"),
    path("webhook_events", api.EventList.as_view(), name="webhook-events"),
    path("webhook_events/<str:event_id>", api.EventDetail.as_view(), name="webhook-event"),
    path("webhook_events/<str:event_id>/deliveries", api.EventDeliveries.as_view(), name="webhook-event-deliveries"),
    path("deliveries/<str:delivery_id>/retry", api.DeliveryRetry.as_view(), name="delivery-retry"),
]
