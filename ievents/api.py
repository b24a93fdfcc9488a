"""``/v1/events``: an organization's events and their ticket types."""

from django.conf import settings
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .api_pagination import PAGINATION_PARAMETERS, paginate, paginated
from .models import Event, TicketType, validate_time_zone


class TicketTypeSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    price = serializers.IntegerField(min_value=0, max_value=100_000_000, help_text="Minor units.")
    quantity = serializers.IntegerField(min_value=0, max_value=1_000_000)
    max_per_order = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    available = serializers.IntegerField(read_only=True)

    class Meta:
        model = TicketType
        fields = ["id", "name", "price", "quantity", "available", "max_per_order", "sales_start", "sales_end", "hidden"]


class EventSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    url = serializers.SerializerMethodField()
    currency = serializers.RegexField(r"^[A-Z]{3}$", max_length=3)
    timezone = serializers.CharField(max_length=64, required=False, validators=[validate_time_zone],
                                     help_text="IANA time zone name; default Europe/Lisbon.")
    ticket_types = TicketTypeSerializer(many=True, required=False)

    class Meta:
        model = Event
        fields = ["id", "url", "name", "description", "venue", "starts_at", "currency", "timezone", "published", "ticket_types"]

    def get_url(self, event) -> str:
        return settings.PUBLIC_BASE_URL + event.get_absolute_url()

    def create(self, validated):
        ticket_types = validated.pop("ticket_types", [])
        with transaction.atomic():
            event = Event.objects.create(organization=self.context["organization"], **validated)
            for position, tt in enumerate(ticket_types):
                TicketType.objects.create(event=event, position=position, **tt)
        return event

    def update(self, event, validated):
        if "ticket_types" in validated:
            raise serializers.ValidationError({"ticket_types": "Ticket types are changed in the admin."})
        return super().update(event, validated)


def organization_events(request):
    return Event.objects.filter(organization=request.organization).prefetch_related("ticket_types")


class EventList(APIView):
    @extend_schema(operation_id="events_list", parameters=PAGINATION_PARAMETERS,
                   responses=paginated(EventSerializer, "EventPage"))
    def get(self, request):
        return paginate(request, organization_events(request), lambda event: EventSerializer(event).data)

    @extend_schema(request=EventSerializer, responses={201: EventSerializer})
    def post(self, request):
        serializer = EventSerializer(data=request.data, context={"organization": request.organization})
        serializer.is_valid(raise_exception=True)
        event = serializer.save()
        return Response(EventSerializer(event).data, status=status.HTTP_201_CREATED)


class EventDetail(APIView):
    @extend_schema(responses=EventSerializer)
    def get(self, request, event_id):
        return Response(EventSerializer(get_object_or_404(organization_events(request), public_id=event_id)).data)

    @extend_schema(request=EventSerializer, responses=EventSerializer)
    def patch(self, request, event_id):
        event = get_object_or_404(organization_events(request), public_id=event_id)
        serializer = EventSerializer(event, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(EventSerializer(event).data)
