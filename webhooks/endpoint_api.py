"""Organizer API: webhook endpoints, the events we sent, their deliveries.

    POST   /v1/webhook_endpoints                   create; the response holds the secret, once
    GET    /v1/webhook_endpoints                   list (cursor pagination)
    GET|PATCH|DELETE /v1/webhook_endpoints/{id}
    POST   /v1/webhook_endpoints/{id}/rotate_secret
    POST   /v1/webhook_endpoints/{id}/test         one signed test event, sent now
    GET    /v1/webhook_events?type=&session=       list
    GET    /v1/webhook_events/{id}
    GET    /v1/webhook_events/{id}/deliveries      with every attempt
    POST   /v1/deliveries/{id}/retry               the dead letter's way back

Views parse and call ``webhooks.delivery``; every lookup is scoped to the API key's
organization, so another organization's id is a 404 like an unknown one.
"""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from ievents.api_errors import ApiError
from ievents.api_pagination import PAGINATION_PARAMETERS, paginate, paginated
from ievents.crypto import mask
from ievents.idempotency import ShownOnceSecret

from . import delivery as delivery_service
from . import tasks
from .models import Delivery, OutboxEvent, WebhookEndpoint
from .outbox import SESSION_EVENT_TYPES
from .signing import rotate_secret
from .targets import TargetRefused, check_target_url

SUBSCRIBABLE = ["*", *SESSION_EVENT_TYPES]


# --- Representations (also the schema) ----------------------------------------------------
class EndpointOut(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    url = serializers.URLField()
    description = serializers.CharField()
    enabled_events = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    failing_since = serializers.DateTimeField(allow_null=True)
    secret_hint = serializers.SerializerMethodField(help_text="The secret, masked. It is shown in full only once.")
    created = serializers.DateTimeField(source="created_at")

    def get_object(self, _endpoint) -> str:
        return "webhook_endpoint"

    def get_secret_hint(self, endpoint) -> str:
        return mask(endpoint.secret)


class EndpointCreated(EndpointOut, ShownOnceSecret):
    pass


class SecretOut(ShownOnceSecret):
    previous_secret_expires_at = serializers.DateTimeField(
        help_text="Until then every request is signed with the old and the new secret.")


class AttemptOut(serializers.Serializer):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    response_body = serializers.CharField(help_text="What the receiver answered, capped.")


class DeliveryOut(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    event = serializers.CharField(source="event.public_id")
    event_type = serializers.CharField(source="event.type")
    endpoint = serializers.SerializerMethodField(help_text="null for a session's own webhook_url.")
    url = serializers.URLField(source="target_url")
    status = serializers.ChoiceField(choices=Delivery.Status.choices)
    attempts_count = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    created = serializers.DateTimeField(source="created_at")
    updated = serializers.DateTimeField(source="updated_at")
    attempts = AttemptOut(many=True)

    def get_object(self, _delivery) -> str:
        return "delivery"

    def get_endpoint(self, delivery) -> str | None:
        return delivery.endpoint.public_id if delivery.endpoint_id else None


class EventOut(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    type = serializers.CharField()
    created = serializers.SerializerMethodField()
    session = serializers.SerializerMethodField()
    data = serializers.SerializerMethodField(help_text="Exactly what the receivers got in data.")

    def get_object(self, _event) -> str:
        return "event"

    def get_created(self, event) -> int:
        return event.payload.get("created", int(event.created_at.timestamp()))

    def get_session(self, event) -> str | None:
        return event.session.public_id if event.session_id else None

    def get_data(self, event) -> dict:
        return event.payload.get("data", {})


class TestOutcomeOut(serializers.Serializer):
    succeeded = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    delivery = DeliveryOut()


# --- Input -----------------------------------------------------------------------------------
class EndpointIn(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    enabled_events = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE), min_length=1, max_length=len(SUBSCRIBABLE),
        help_text='Event types, or ["*"] for every type, including ones added later.',
    )
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False, help_text="Enabling clears the reason it was disabled.")

    def validate_url(self, value):
        try:
            check_target_url(value)
        except TargetRefused as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def validate_enabled_events(self, value):
        return ["*"] if "*" in value else sorted(set(value))


# --- Views ---------------------------------------------------------------------------------
def own_endpoints(request):
    return WebhookEndpoint.objects.filter(organization=request.organization)


def own_endpoint(request, endpoint_id) -> WebhookEndpoint:
    return get_object_or_404(own_endpoints(request), public_id=endpoint_id)


def own_events(request):
    return OutboxEvent.objects.filter(organization=request.organization).select_related("session")


def own_deliveries(request):
    return (Delivery.objects.filter(event__organization=request.organization)
            .select_related("event", "endpoint").prefetch_related("attempts"))


class EndpointList(APIView):
    @extend_schema(operation_id="webhook_endpoints_list", parameters=PAGINATION_PARAMETERS,
                   responses=paginated(EndpointOut, "WebhookEndpointPage"))
    def get(self, request):
        return paginate(request, own_endpoints(request), lambda e: EndpointOut(e).data)

    @extend_schema(operation_id="webhook_endpoints_create", request=EndpointIn, responses={201: EndpointCreated})
    def post(self, request):
        data = EndpointIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        endpoint = WebhookEndpoint.objects.create(
            organization=request.organization, url=v["url"], enabled_events=v["enabled_events"],
            description=v.get("description", ""), enabled=v.get("enabled", True),
        )
        body = EndpointOut(endpoint).data | {"secret": endpoint.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class EndpointDetail(APIView):
    @extend_schema(operation_id="webhook_endpoints_retrieve", responses=EndpointOut)
    def get(self, request, endpoint_id):
        return Response(EndpointOut(own_endpoint(request, endpoint_id)).data)

    @extend_schema(operation_id="webhook_endpoints_update", request=EndpointIn(partial=True), responses=EndpointOut)
    def patch(self, request, endpoint_id):
        endpoint = own_endpoint(request, endpoint_id)
        data = EndpointIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        with transaction.atomic():
            for field in ("url", "enabled_events", "description"):
                if field in v:
                    setattr(endpoint, field, v[field])
            endpoint.save(update_fields=["url", "enabled_events", "description"])
            if v.get("enabled") is True and not endpoint.enabled:
                delivery_service.enable_endpoint(endpoint)
            elif v.get("enabled") is False and endpoint.enabled:
                delivery_service.disable_endpoint(endpoint, "Disabled through the API.", notify=False)
        return Response(EndpointOut(endpoint).data)

    @extend_schema(operation_id="webhook_endpoints_destroy", responses={204: None})
    def delete(self, request, endpoint_id):
        own_endpoint(request, endpoint_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointRotateSecret(APIView):
    @extend_schema(operation_id="webhook_endpoints_rotate_secret", request=None, responses=SecretOut)
    def post(self, request, endpoint_id):
        endpoint = own_endpoint(request, endpoint_id)
        secret = rotate_secret(endpoint)
        return Response({"secret": secret, "previous_secret_expires_at": endpoint.previous_secret_expires_at})


class EndpointTest(APIView):
    @extend_schema(operation_id="webhook_endpoints_test", request=None, responses=TestOutcomeOut)
    def post(self, request, endpoint_id):
        endpoint = own_endpoint(request, endpoint_id)
        delivery, outcome = delivery_service.send_test_event(endpoint)
        delivery = own_deliveries(request).get(pk=delivery.pk)
        return Response({
            "succeeded": delivery.status == Delivery.Status.SUCCEEDED,
            "status_code": outcome.status_code,
            "error": outcome.error,
            "delivery": DeliveryOut(delivery).data,
        })


class EventList(APIView):
    @extend_schema(
        operation_id="webhook_events_list",
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("type", str, description="Only events of this type."),
            OpenApiParameter("session", str, description="Only events about this checkout session (cs_…)."),
        ],
        responses=paginated(EventOut, "WebhookEventPage"),
    )
    def get(self, request):
        events = own_events(request)
        if request.query_params.get("type"):
            events = events.filter(type=request.query_params["type"])
        if request.query_params.get("session"):
            events = events.filter(session__public_id=request.query_params["session"])
        return paginate(request, events, lambda e: EventOut(e).data)


class EventDetail(APIView):
    @extend_schema(operation_id="webhook_events_retrieve", responses=EventOut)
    def get(self, request, event_id):
        return Response(EventOut(get_object_or_404(own_events(request), public_id=event_id)).data)


class EventDeliveries(APIView):
    @extend_schema(operation_id="webhook_events_deliveries", parameters=PAGINATION_PARAMETERS,
                   responses=paginated(DeliveryOut, "DeliveryPage"))
    def get(self, request, event_id):
        event = get_object_or_404(own_events(request), public_id=event_id)
        return paginate(request, own_deliveries(request).filter(event=event), lambda d: DeliveryOut(d).data)


class DeliveryRetry(APIView):
    @extend_schema(operation_id="deliveries_retry", request=None, responses=DeliveryOut)
    def post(self, request, delivery_id):
        found = get_object_or_404(own_deliveries(request), public_id=delivery_id)
        try:
            tasks.retry_delivery(found.pk)
        except delivery_service.NotRetryable as exc:
            raise ApiError(str(exc), "not_retryable", status.HTTP_409_CONFLICT) from exc
        return Response(DeliveryOut(own_deliveries(request).get(pk=found.pk)).data)
