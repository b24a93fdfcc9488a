"""Organizer API for an event's pre-payment gate.

    PUT  /v1/events/{id}/gate                 create or change it; the secret is in the response
                                              only when the gate is first created
    GET  /v1/events/{id}/gate                 read it (the secret masked)
    POST /v1/events/{id}/gate/rotate_secret   a new secret; the old one keeps signing for a day
    POST /v1/events/{id}/gate/test            one real, signed call; its outcome

The event is looked up within the API key's organization: another organization's event is
a 404 like an unknown one. The rules for saving live in ``webhooks.gate``.
"""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from ievents.api_errors import ApiError
from ievents.crypto import mask
from ievents.idempotency import ShownOnceSecret
from ievents.models import Event

from . import gate as gate_service
from .models import GateCall, GateSettings
from .signing import rotate_secret


class GateIn(serializers.Serializer):
    url = serializers.URLField(max_length=2000, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)
    timeout_ms = serializers.IntegerField(required=False, help_text="500–10000; 3000 by default.")
    on_error = serializers.ChoiceField(choices=GateSettings.OnError.choices, required=False,
                                       help_text="What a failing gate means: block (default) or allow.")
    denial_message = serializers.CharField(max_length=500, required=False)
    error_message = serializers.CharField(max_length=500, required=False)


class GateOut(serializers.Serializer):
    object = serializers.SerializerMethodField()
    event = serializers.CharField(source="event.public_id")
    url = serializers.CharField()
    enabled = serializers.BooleanField()
    timeout_ms = serializers.IntegerField()
    on_error = serializers.CharField()
    denial_message = serializers.CharField()
    error_message = serializers.CharField()
    secret_hint = serializers.SerializerMethodField(help_text="The secret, masked.")
    breaker_open_until = serializers.DateTimeField(allow_null=True)

    def get_object(self, _gate) -> str:
        return "gate"

    def get_secret_hint(self, gate) -> str:
        return mask(gate.secret)


class GateCreated(GateOut):
    secret = serializers.CharField(required=False,  # absent when an existing gate is changed
                                   help_text="whsec_…: verify our signatures with it. Shown only when created.")


class GateSecretOut(ShownOnceSecret):
    pass


class GateCallOut(serializers.Serializer):
    outcome = serializers.CharField(help_text="allowed, denied or error")
    decision = serializers.CharField(help_text="allow or deny: what a checkout would do with this answer")
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField()
    message = serializers.CharField(help_text="The gate's message on a denial, as received (capped).")
    error = serializers.CharField()
    created = serializers.DateTimeField(source="created_at")


def _event(request, event_id) -> Event:
    return get_object_or_404(Event, organization=request.organization, public_id=event_id)


def _gate(request, event_id) -> GateSettings:
    event = _event(request, event_id)
    gate = GateSettings.objects.filter(event=event).select_related("event").first()
    if gate is None:
        raise ApiError("This event has no gate yet; PUT one first.", "gate_not_found", 404)
    return gate


class GateDetail(APIView):
    @extend_schema(responses=GateOut)
    def get(self, request, event_id):
        return Response(GateOut(_gate(request, event_id)).data)

    @extend_schema(request=GateIn, responses={200: GateCreated})
    def put(self, request, event_id):
        event = _event(request, event_id)
        data = GateIn(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            gate = GateSettings.objects.select_for_update().filter(event=event).first()
            created = gate is None
            gate = gate or GateSettings(event=event)
            for name, value in data.validated_data.items():
                setattr(gate, name, value)
            try:
                gate_service.check_gate_settings(url=gate.url, enabled=gate.enabled, timeout_ms=gate.timeout_ms)
            except gate_service.GateSettingsInvalid as exc:
                raise serializers.ValidationError({exc.field: [exc.message]}) from exc
            gate.save()
        return Response((GateCreated if created else GateOut)(gate).data)


class GateRotateSecret(APIView):
    @extend_schema(request=None, responses=GateSecretOut)
    def post(self, request, event_id):
        return Response({"secret": rotate_secret(_gate(request, event_id))})


class GateTest(APIView):
    @extend_schema(request=None, responses=GateCallOut)
    def post(self, request, event_id):
        gate = _gate(request, event_id)
        if not gate.url:
            raise ApiError("The gate has no URL to call.", "gate_has_no_url", 409)
        call: GateCall = gate_service.send_test_request(gate)
        return Response(GateCallOut(call).data)
