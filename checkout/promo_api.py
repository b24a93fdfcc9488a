"""``/v1/events/{id}/promo_codes``: an event's promo and access codes (``checkout.promo``)."""

import zoneinfo

from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from ievents.api_errors import ApiError
from ievents.api_pagination import PAGINATION_PARAMETERS, paginate, paginated
from ievents.models import Event, TicketType

from . import promo
from .models import PromoCode, normalize_code


class PromoCodeSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    code = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,39}$", required=False,
                                  help_text="3 to 40 letters, digits, - or _; any case. Omitted: one is made.")
    percent_off = serializers.IntegerField(min_value=1, max_value=100, required=False, allow_null=True)
    amount_off = serializers.IntegerField(min_value=1, max_value=100_000_000, required=False, allow_null=True,
                                          help_text="Off each ticket, minor units of the event's currency.")
    ticket_types = serializers.SlugRelatedField(many=True, slug_field="public_id", queryset=TicketType.objects.none(),
                                                required=False, help_text="Ids of the ticket types it applies to.")
    reveals_ticket_types = serializers.SlugRelatedField(many=True, slug_field="public_id",
                                                        queryset=TicketType.objects.none(), required=False,
                                                        help_text="Ids of hidden ticket types it shows and sells.")
    max_uses = serializers.IntegerField(min_value=0, max_value=10_000_000, required=False, allow_null=True)
    max_uses_per_order = serializers.IntegerField(min_value=1, max_value=1000, required=False, allow_null=True)
    used = serializers.IntegerField(read_only=True, help_text="Uses held by open orders plus those paid.")

    class Meta:
        model = PromoCode
        fields = ["id", "code", "percent_off", "amount_off", "ticket_types", "reveals_ticket_types", "max_uses",
                  "max_uses_per_order", "valid_from", "valid_until", "uses_return_on_refund", "used", "created_at"]
        read_only_fields = ["created_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        event = self.context.get("event")
        if event is None:  # the schema's generator describes the fields without an event
            return
        for name in ("ticket_types", "reveals_ticket_types"):  # this event's only: another's id is unknown
            self.fields[name].child_relation.queryset = event.ticket_types.all()
        for name in ("valid_from", "valid_until"):  # a time without an offset is the event's local time
            self.fields[name].timezone = zoneinfo.ZoneInfo(event.timezone)

    def validate(self, data):
        merged = {name: getattr(self.instance, name, None) for name in ("percent_off", "amount_off", "valid_from",
                                                                         "valid_until")} | data
        if merged.get("percent_off") and merged.get("amount_off"):
            raise serializers.ValidationError({"amount_off": "Give percent_off or amount_off, not both."})
        if merged.get("valid_from") and merged.get("valid_until") and merged["valid_until"] <= merged["valid_from"]:
            raise serializers.ValidationError({"valid_until": "It must be after valid_from."})
        return data


def _save(serializer: PromoCodeSerializer, code: PromoCode) -> PromoCode:
    """Write the code and its ticket types; the limit is checked against the uses taken under
    the code's row lock, so a checkout taking one meanwhile cannot slip under a lowered limit."""
    data = dict(serializer.validated_data)
    applies = data.pop("ticket_types", None)
    reveals = data.pop("reveals_ticket_types", None)
    try:
        with transaction.atomic():
            if code.pk is not None:
                code.used = PromoCode.objects.select_for_update().values_list("used", flat=True).get(pk=code.pk)
            for name, value in data.items():
                setattr(code, name, value)
            if code.max_uses is not None and code.max_uses < code.used:
                raise ApiError(f"{code.used} uses are already taken: max_uses cannot be lower.", "max_uses_below_used")
            if not code.code:
                code.code = promo.new_code()
            code.save()
            if applies is not None:
                code.ticket_types.set(applies)
            if reveals is not None:
                code.reveals_ticket_types.set(reveals)
    except IntegrityError as exc:
        raise ApiError(f"This event already has the code {normalize_code(code.code)}.", "code_taken",
                       status.HTTP_409_CONFLICT) from exc
    return code


def _event(request, event_id) -> Event:
    return get_object_or_404(Event, organization=request.organization, public_id=event_id)


def _codes(event):
    return PromoCode.objects.filter(event=event).prefetch_related("ticket_types", "reveals_ticket_types")


class PromoCodeList(APIView):
    @extend_schema(operation_id="promo_codes_list", parameters=PAGINATION_PARAMETERS,
                   responses=paginated(PromoCodeSerializer, "PromoCodePage"))
    def get(self, request, event_id):
        event = _event(request, event_id)
        return paginate(request, _codes(event), lambda code: PromoCodeSerializer(code, context={"event": event}).data)

    @extend_schema(request=PromoCodeSerializer, responses={201: PromoCodeSerializer})
    def post(self, request, event_id):
        event = _event(request, event_id)
        serializer = PromoCodeSerializer(data=request.data, context={"event": event})
        serializer.is_valid(raise_exception=True)
        code = _save(serializer, PromoCode(event=event))
        return Response(PromoCodeSerializer(code, context={"event": event}).data, status=status.HTTP_201_CREATED)


class PromoCodeDetail(APIView):
    def _code(self, request, event_id, code_id):
        event = _event(request, event_id)
        return event, get_object_or_404(_codes(event), public_id=code_id)

    @extend_schema(responses=PromoCodeSerializer)
    def get(self, request, event_id, code_id):
        event, code = self._code(request, event_id, code_id)
        return Response(PromoCodeSerializer(code, context={"event": event}).data)

    @extend_schema(request=PromoCodeSerializer, responses=PromoCodeSerializer)
    def patch(self, request, event_id, code_id):
        event, code = self._code(request, event_id, code_id)
        serializer = PromoCodeSerializer(code, data=request.data, partial=True, context={"event": event})
        serializer.is_valid(raise_exception=True)
        code = _save(serializer, code)
        return Response(PromoCodeSerializer(_codes(event).get(pk=code.pk), context={"event": event}).data)

    @extend_schema(responses={204: None})
    def delete(self, request, event_id, code_id):
        """Orders that used the code keep its text and what it gave them."""
        _, code = self._code(request, event_id, code_id)
        code.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
