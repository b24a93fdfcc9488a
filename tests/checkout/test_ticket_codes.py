"""Ticket codes: unguessable, readable, every symbol as likely as any other."""

import re
from collections import Counter

from checkout.models import TICKET_CODE_ALPHABET, new_ticket_code


def test_a_code_is_three_groups_of_four_readable_symbols():
    assert len(set(TICKET_CODE_ALPHABET)) == 32 and not set("01IO") & set(TICKET_CODE_ALPHABET)
    for _ in range(200):
        assert re.fullmatch(f"[{TICKET_CODE_ALPHABET}]{{4}}(-[{TICKET_CODE_ALPHABET}]{{4}}){{2}}", new_ticket_code())


def test_every_symbol_is_as_likely_and_codes_do_not_repeat():
    codes = [new_ticket_code() for _ in range(3000)]
    assert len(set(codes)) == len(codes)
    counts = Counter("".join(codes).replace("-", ""))
    expected = 3000 * 12 / 32  # 1125; the standard deviation is about 33
    assert set(counts) == set(TICKET_CODE_ALPHABET)
    assert all(abs(n - expected) < 250 for n in counts.values()), counts
