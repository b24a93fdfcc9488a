"""``/v1/checkout/sessions``: open a hosted checkout for an attendee, read it, expire it."""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from ievents import languages
from ievents.api_errors import ApiError
from ievents.api_pagination import PAGINATION_PARAMETERS, paginate, paginated
from ievents.models import Event, TicketType
from webhooks.targets import TargetRefused, check_target_url

from . import promo, services, state
from .inventory import SoldOut
from .models import Answer, CheckoutSession, LineItem, Source
from .representation import session_as_api


class LineItemInput(serializers.Serializer):
    ticket_type = serializers.CharField(max_length=40)
    quantity = serializers.IntegerField(min_value=1, max_value=1000)


class SessionInput(serializers.Serializer):
    event = serializers.CharField(max_length=40)
    line_items = LineItemInput(many=True, allow_empty=False)
    customer_email = serializers.EmailField(required=False, allow_blank=True)
    success_url = serializers.URLField(required=False, allow_blank=True, max_length=2000)
    cancel_url = serializers.URLField(required=False, allow_blank=True, max_length=2000)
    webhook_url = serializers.URLField(required=False, allow_blank=True, max_length=2000)
    metadata = serializers.DictField(required=False, child=serializers.CharField(max_length=500, allow_blank=True))
    language = serializers.CharField(
        required=False, max_length=10,
        help_text="The attendee's language, \"en\" or \"pt-PT\": the organizer's texts in the gate's payload, "
                  "notifications and the ticket email are in it. Default: the request's Accept-Language, else English.",
    )

    def validate_language(self, value):
        if not languages.is_known(value):
            raise serializers.ValidationError('Use "en" or "pt-PT".')
        return languages.supported(value)

    promo_code = serializers.CharField(required=False, allow_blank=True, max_length=40,
                                       help_text="A promo or access code of the event (any case).")

    def validate_metadata(self, value):
        if len(value) > 50:
            raise serializers.ValidationError("At most 50 keys.")
        if any("\x00" in key for key in value):  # values are checked by their CharField; keys are not
            raise serializers.ValidationError("Keys cannot contain NUL characters.")
        return value

    def validate_webhook_url(self, value):
        if value:
            try:
                check_target_url(value)
            except TargetRefused as exc:
                raise serializers.ValidationError(str(exc)) from exc
        return value


def _an_id(value) -> bool:
    # As the serializer would take it (at most 40 characters), and without NUL, which
    # PostgreSQL cannot compare with (a 500, not a 400).
    return isinstance(value, str) and 0 < len(value) <= 40 and "\x00" not in value


def _as_sent(data) -> tuple[str, dict[str, int]] | None:
    """The event and ``{ticket type: quantity}`` of a body as sent, when they are plainly
    well-formed (else None: the serializer says what is wrong), repeated types summed."""
    if not isinstance(data, dict) or not _an_id(data.get("event")):
        return None
    lines = data.get("line_items")
    if not isinstance(lines, list) or not lines:
        return None
    wanted: dict[str, int] = {}
    for line in lines:
        if not isinstance(line, dict):
            return None
        public_id, quantity = line.get("ticket_type"), line.get("quantity")
        if not _an_id(public_id) or type(quantity) is not int or not 1 <= quantity <= 1000:
            return None
        wanted[public_id] = wanted.get(public_id, 0) + quantity
    return data["event"], wanted


def _ticket_types(organization, event_public_id: str) -> dict[str, TicketType]:
    """The event's ticket types with their event (one read, not two: an on-sale's refused
    callers pay for this and the key's read only), the event's organization the key's own."""
    types = {tt.public_id: tt for tt in TicketType.objects.select_related("event").filter(
        event__organization=organization, event__public_id=event_public_id)}
    event = next(iter(types.values())).event if types else None
    for tt in types.values():
        tt.event = event  # one instance for all: create_session compares against it
    if event is not None:
        event.organization = organization
    return types


class SessionList(APIView):
    @extend_schema(request=SessionInput, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        # Most of an on-sale's requests are refused: once the ticket types read for the order
        # show it cannot be had, the answer is sold_out at once, before the rest of the body is
        # validated (as the event page answers before its limits; issue 26).
        sent = _as_sent(request.data)
        types = _ticket_types(request.organization, sent[0]) if sent is not None else None
        if sent is not None and types and all(public_id in types for public_id in sent[1]):
            try:
                services.check_available([services.Item(types[public_id], n) for public_id, n in sent[1].items()])
            except SoldOut as exc:
                raise ApiError(str(exc), "sold_out", status.HTTP_409_CONFLICT) from exc
        data = SessionInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if sent is None or v["event"] != sent[0]:
            types = _ticket_types(request.organization, v["event"])
        if types:
            event = next(iter(types.values())).event
        else:  # an event without types is read alone, for its 404
            event = get_object_or_404(Event, organization=request.organization, public_id=v["event"])
        # One ticket type on several lines is one order of their sum: max_per_order is
        # checked against that, not line by line.
        wanted: dict[str, int] = {}
        for line in v["line_items"]:
            if line["ticket_type"] not in types:
                raise ApiError(f"No ticket type {line['ticket_type']} in this event.", "unknown_ticket_type")
            wanted[line["ticket_type"]] = wanted.get(line["ticket_type"], 0) + line["quantity"]
        items = [services.Item(types[public_id], quantity) for public_id, quantity in wanted.items()]
        try:
            # The API is not limited like the pages: its caller is the organizer's own server.
            code = promo.check_code(event, v["promo_code"]) if v.get("promo_code") else None
            session = services.create_session(
                event, items, source=Source.API, customer_email=v.get("customer_email", ""),
                success_url=v.get("success_url", ""), cancel_url=v.get("cancel_url", ""),
                webhook_url=v.get("webhook_url", ""), metadata=v.get("metadata", {}),
                language=v.get("language", ""), promo_code=code,
            )
        except SoldOut as exc:
            raise ApiError(str(exc), "sold_out", status.HTTP_409_CONFLICT) from exc
        except promo.CodeRefused as exc:
            conflict = exc.reason == "used_up"
            raise ApiError(exc.message, exc.code, status.HTTP_409_CONFLICT if conflict else 400) from exc
        except services.CheckoutError as exc:
            raise ApiError(exc.message, exc.code) from exc
        return Response(session_as_api(session), status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="checkout_sessions_list", parameters=PAGINATION_PARAMETERS,
                   responses=paginated(OpenApiTypes.OBJECT, "CheckoutSessionPage"))
    def get(self, request):
        sessions = CheckoutSession.objects.filter(organization=request.organization).select_related("event")
        # Everything session_as_api shows, in four statements for the page, not four per session.
        sessions = sessions.prefetch_related(
            Prefetch("line_items", queryset=LineItem.objects.select_related("ticket_type")),
            Prefetch("answers", queryset=Answer.objects.select_related("question")),
            "tickets",
        )
        return paginate(request, sessions, session_as_api)


def _own_session(request, session_id) -> CheckoutSession:
    return get_object_or_404(
        CheckoutSession.objects.select_related("event"), organization=request.organization, public_id=session_id
    )


class SessionDetail(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, session_id):
        return Response(session_as_api(_own_session(request, session_id)))


class SessionExpire(APIView):
    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, session_id):
        session = _own_session(request, session_id)
        try:
            session = services.expire_session(session.pk, Source.API, detail="expired through the API")
        except state.InvalidTransition as exc:
            raise ApiError(f"A {exc.status} session cannot be expired.", "invalid_state", status.HTTP_409_CONFLICT) from exc
        return Response(session_as_api(session))
