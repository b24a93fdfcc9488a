import pytest

from checkout.models import PromoCode
from ievents.models import TicketType


def make_code(event, code="SPRING", **fields) -> PromoCode:
    applies = fields.pop("ticket_types", ())
    reveals = fields.pop("reveals", ())
    made = PromoCode.objects.create(event=event, code=code, **fields)
    made.ticket_types.set(applies)
    made.reveals_ticket_types.set(reveals)
    return made


@pytest.fixture
def hidden_type(event):
    return TicketType.objects.create(event=event, name="Speaker", price=0, quantity=20, hidden=True, position=5)
