"""``POST /v1/attendees/erase``: erase one attendee of the key's organization, on request."""

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from checkout.models import ErasureRecord

from ..api_auth import HasOrganization
from ..api_errors import ApiError
from ..roles import ERASE_ATTENDEE, allows
from . import erasure


class MayErase(permissions.BasePermission):
    """The key's role must allow erasing (owner and manager keys; a viewer key only reads),
    asked by name rather than through "a POST needs a change"."""

    message = "This API key's role does not allow erasing an attendee (owner or manager keys only)."

    def has_permission(self, request, view):
        return allows(getattr(request.auth, "role", None), ERASE_ATTENDEE)


class ErasureRequestSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254, help_text="The attendee's email, as they gave it.")


class ErasureSerializer(serializers.ModelSerializer):
    email_sha256 = serializers.CharField(
        read_only=True, help_text="SHA-256 of '<organization public id>:<email in lower case>': the email is not kept.")

    class Meta:
        model = ErasureRecord
        fields = ["id", "email_sha256", "rows", "rows_total", "erased_at"]


class AttendeeErase(APIView):
    """Replace the attendee's name, email and answers by a marker in every order, payment,
    provider message, gate call and notification of this organization (docs/operations.md)."""

    permission_classes = [MayErase, HasOrganization]

    @extend_schema(operation_id="attendees_erase", request=ErasureRequestSerializer, responses=ErasureSerializer)
    def post(self, request):
        given = ErasureRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            record = erasure.erase_attendee(request.organization, given.validated_data["email"],
                                            source=ErasureRecord.Source.API,
                                            requested_by=f"API key {request.auth.prefix}")
        except erasure.ErasureError as exc:
            raise ApiError(str(exc), "invalid_email") from exc
        return Response(ErasureSerializer(record).data)
