"""``/v1/events``: an organization's events and their ticket types."""

from django.conf import settings
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import translation
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .api_pagination import PAGINATION_PARAMETERS, paginate, paginated
from .models import Event, TicketType, validate_time_zone


class BothLanguagesSerializer(serializers.ModelSerializer):
    """The organizer's texts in both languages: ``name_en`` and ``name_pt`` (``"name_pt_pt"`` in
    the model). ``name`` stays what it always was: written, it is the English text; read, the
    English text, else the Portuguese one. ``required_texts`` are needed in one language."""

    texts: tuple[str, ...] = ()
    required_texts: tuple[str, ...] = ()

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        for field in self.texts:
            if field in values:
                values.setdefault(f"{field}_en", values.pop(field))
        return values

    def validate(self, attrs):
        for field in self.required_texts:
            given = [attrs.get(f"{field}_en", None), attrs.get(f"{field}_pt_pt", None)]
            missing_now = self.instance is None and not any(given)
            # A change may empty one language, never both.
            emptied = self.instance is not None and any(f"{field}_{s}" in attrs for s in ("en", "pt_pt")) and not (
                attrs.get(f"{field}_en", getattr(self.instance, f"{field}_en"))
                or attrs.get(f"{field}_pt_pt", getattr(self.instance, f"{field}_pt_pt")))
            if missing_now or emptied:
                raise serializers.ValidationError({field: f"Give {field}, {field}_en or {field}_pt."})
        return attrs

    def to_representation(self, instance):
        with translation.override(settings.LANGUAGE_CODE):
            return super().to_representation(instance)


def text_fields(field: str, max_length: int | None, help_text: str) -> tuple[serializers.CharField, ...]:
    """``name``, ``name_en`` and ``name_pt`` of a serializer (see ``BothLanguagesSerializer``)."""
    kwargs = {"required": False, "allow_blank": True} | ({"max_length": max_length} if max_length else {})
    return (
        serializers.CharField(**kwargs, help_text=f"{help_text} Written: the English text; read: the English "
                                                  "text, else the Portuguese one."),
        serializers.CharField(**kwargs, allow_null=True, help_text=f"{help_text} In English."),
        serializers.CharField(**kwargs, allow_null=True, source=f"{field}_pt_pt",
                              help_text=f"{help_text} In Portuguese (pt-PT)."),
    )


class TicketTypeSerializer(BothLanguagesSerializer):
    texts = required_texts = ("name",)
    name, name_en, name_pt = text_fields("name", 200, "The ticket type's name.")
    id = serializers.CharField(source="public_id", read_only=True)
    price = serializers.IntegerField(min_value=0, max_value=100_000_000, help_text="Minor units.")
    quantity = serializers.IntegerField(min_value=0, max_value=1_000_000)
    max_per_order = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    available = serializers.IntegerField(read_only=True)

    class Meta:
        model = TicketType
        fields = ["id", "name", "name_en", "name_pt", "price", "quantity", "available", "max_per_order", "sales_start",
                  "sales_end", "hidden"]


class EventSerializer(BothLanguagesSerializer):
    texts = ("name", "description")
    required_texts = ("name",)
    name, name_en, name_pt = text_fields("name", 200, "The event's name.")
    description, description_en, description_pt = text_fields("description", None, "What attendees read.")
    id = serializers.CharField(source="public_id", read_only=True)
    url = serializers.SerializerMethodField()
    currency = serializers.RegexField(r"^[A-Z]{3}$", max_length=3)
    timezone = serializers.CharField(max_length=64, required=False, validators=[validate_time_zone],
                                     help_text="IANA time zone name; default Europe/Lisbon.")
    ticket_types = TicketTypeSerializer(many=True, required=False)

    class Meta:
        model = Event
        fields = ["id", "url", "name", "name_en", "name_pt", "description", "description_en", "description_pt", "venue",
                  "starts_at", "currency", "timezone", "published", "ticket_types"]

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
