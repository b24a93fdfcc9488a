"""The pre-payment gate (``checkout.validate``): ask the organizer's system, decide.

The checkout calls ``run_gate`` after the attendee's form validates and before any payment
is created. An approval is recorded against the exact details submitted.
"""

from __future__ import annotations

from dataclasses import dataclass

from checkout import services as checkout


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    message: str = ""


def run_gate(session, *, client_ip: str = "") -> GateDecision:
    if not checkout.gate_is_active(session):
        checkout.record_gate_approval(session)
        return GateDecision(True)
    raise NotImplementedError("the gate call arrives with issue 3")
