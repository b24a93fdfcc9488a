"""The pre-payment gate (``checkout.validate``): ask the organizer's system, decide.

The checkout calls ``run_gate`` after the attendee's form validates and before any payment
is created. An approval is recorded against the exact details the gate was shown; any
change voids it (``checkout.services``), and payment cannot start without it.

How an answer is read (docs/gate.md):

- 2xx → allow (the body, if any, must be JSON);
- 4xx except 408 and 429 → deny, showing the gate's JSON ``message`` as plain text (capped),
  or the organizer's denial message;
- anything else — 3xx (never followed), 408, 429, 5xx, timeout, connection or TLS failure,
  an oversized or unreadable body, a blocked address — is an error, and the gate's
  ``on_error`` policy decides (block by default).

Two guards sit in front of the call. A rate limit per session and per client IP stops an
attendee probing a whitelist. A circuit breaker stops calling a gate that keeps failing:
after ``GATE_BREAKER_FAILURES`` consecutive errors it opens for
``GATE_BREAKER_COOLDOWN_SECONDS``, during which the policy applies at once; after that one
request (the probe) calls the gate again, and its answer closes or re-opens the breaker.
While it is open the rate limit is not counted: with no gate asked there is nothing to probe.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy

from checkout import services as checkout
from checkout import state
from checkout.limits import address_key
from checkout.models import Source
from checkout.representation import session_as_api
from ievents.crypto import new_public_id

from . import http
from .models import GateCall, GateSettings
from .signing import sign_headers, signing_secrets
from .targets import TargetRefused, check_target_url

log = logging.getLogger(__name__)

EVENT_TYPE = "checkout.validate"
TIMEOUT_MS_MIN, TIMEOUT_MS_MAX = 500, 10_000
RATE_LIMITED_MESSAGE = gettext_lazy("Too many attempts. Please wait a few minutes before trying again.")
DETAILS_CHANGED_MESSAGE = gettext_lazy(
    "Your details changed while we were checking them. Please check them and continue again.")


class GateSettingsInvalid(ValueError):
    """Gate settings an organizer may not save; ``field`` names the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def check_gate_settings(*, url: str, enabled: bool, timeout_ms: int) -> None:
    """The rules for saving a gate, shared by the admin and the API."""
    if not TIMEOUT_MS_MIN <= timeout_ms <= TIMEOUT_MS_MAX:
        raise GateSettingsInvalid("timeout_ms", f"Choose a timeout between {TIMEOUT_MS_MIN} and {TIMEOUT_MS_MAX} ms.")
    if enabled and not url:
        raise GateSettingsInvalid("url", "An enabled gate needs a URL.")
    if url:
        try:
            check_target_url(url)
        except TargetRefused as exc:
            raise GateSettingsInvalid("url", str(exc)) from exc


@dataclass(frozen=True)
class GateDecision:
    """What the checkout does now: go on to payment, or show ``message``."""

    allowed: bool
    message: str = ""
    outcome: str = ""  # "allowed", "denied", "error", "rate_limited"; "" when no gate is active
    call: GateCall | None = None


@dataclass(frozen=True)
class GateAnswer:
    """What one call to the gate said, before any policy."""

    outcome: str  # GateCall.Outcome
    status_code: int | None = None
    latency_ms: int = 0
    message: str = ""  # the gate's own message on a denial, cleaned and capped
    error: str = ""


# --- Talking to the gate --------------------------------------------------------------------
def ask_gate(gate: GateSettings, payload: dict) -> GateAnswer:
    """Send ``payload`` signed to the gate and read its answer. Never raises for the network."""
    return _send(gate.url, gate.timeout_ms, *_signed(gate, payload))


def _signed(gate: GateSettings, payload: dict) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return body, sign_headers(payload["id"], body, signing_secrets(gate))


def _send(url: str, timeout_ms: int, body: bytes, headers: dict[str, str]) -> GateAnswer:
    return interpret(http.post(url, body, headers, timeout=timeout_ms / 1000))


def interpret(result: http.HttpResult) -> GateAnswer:
    latency = result.elapsed_ms
    if result.error:
        return GateAnswer(GateCall.Outcome.ERROR, result.status_code, latency, error=result.error)
    code = result.status_code
    if 200 <= code < 300:
        if result.body.strip():
            try:
                json.loads(result.body)
            except (ValueError, RecursionError):  # RecursionError: a "[[[[…" bomb within the size cap
                return GateAnswer(GateCall.Outcome.ERROR, code, latency, error=f"HTTP {code} with a body that is not JSON.")
        return GateAnswer(GateCall.Outcome.ALLOWED, code, latency)
    if 400 <= code < 500 and code not in (408, 429):
        return GateAnswer(GateCall.Outcome.DENIED, code, latency, message=remote_message(result.body))
    if 300 <= code < 400:
        return GateAnswer(GateCall.Outcome.ERROR, code, latency, error=f"HTTP {code}: redirects are not followed.")
    return GateAnswer(GateCall.Outcome.ERROR, code, latency, error=f"HTTP {code}.")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")


def remote_message(body: bytes) -> str:
    """The ``message`` of a JSON body as one line of plain text, capped; "" if there is none.
    It is data from outside: templates escape it, we only tidy and shorten it."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, str):
        return ""
    text = " ".join(_CONTROL.sub(" ", message).split())
    cap = settings.GATE_MESSAGE_MAX_CHARS
    return text if len(text) <= cap else text[: cap - 1].rstrip() + "…"


def validate_payload(session, *, line_items: list | None = None, answers: list | None = None) -> dict:
    return {
        "id": new_public_id("msg"),
        "type": EVENT_TYPE,
        "created": int(time.time()),
        "data": {"object": session_as_api(session, line_items=line_items, answers=answers)},
    }


def sample_payload(gate: GateSettings) -> dict:
    """A made-up but well-formed session for the organizer's "Send test request"."""
    event = gate.event
    ticket = event.ticket_types.first()
    price = ticket.price if ticket else 0
    line_items = [{"ticket_type": ticket.public_id, "name": ticket.name, "quantity": 1, "unit_price": price,
                   "unit_discount": 0, "discount": 0, "amount": price}] if ticket else []
    return {
        "id": new_public_id("msg"),
        "type": EVENT_TYPE,
        "created": int(time.time()),
        "test": True,
        "data": {"object": {
            "id": "cs_test", "object": "checkout.session", "status": "open", "version": 1, "url": None,
            "event": event.public_id, "customer": {"name": "Test Attendee", "email": "test.attendee@example.com"},
            "answers": {q.text: "" for q in event.questions.all()}, "line_items": line_items,
            "promo_code": None, "discount_total": 0,
            "amount_total": price, "amount_paid": 0, "amount_refunded": 0, "currency": event.currency,
            "metadata": {}, "test": True,
        }},
    }


def lets_through(gate: GateSettings, answer: GateAnswer) -> bool:
    """The gate's policy: an approval lets the attendee pay, and so does an error when the
    organizer chose ``on_error = allow``."""
    return answer.outcome == GateCall.Outcome.ALLOWED or (
        answer.outcome == GateCall.Outcome.ERROR and gate.on_error == GateSettings.OnError.ALLOW
    )


# --- Deciding for a checkout ----------------------------------------------------------------
def run_gate(session, *, client_ip: str = "", line_items: list | None = None,
             answers: list | None = None) -> GateDecision:
    """Ask the event's gate about the details ``session`` holds now, and record the outcome.

    ``line_items`` and ``answers``: all of the session's as its caller has just saved them
    (``checkout.rows_as_saved``), so they are not read back; otherwise they are read. The
    payload and the fingerprint are built from the same rows. No transaction is held open
    while the gate thinks. An approval is recorded only if the details were not saved again
    meanwhile (``checkout.record_gate_approval``); a refusal revokes any earlier approval,
    and a denial is announced through the state machine.
    """
    if not checkout.gate_is_active(session):
        # No gate, nothing to approve: payment may start while it stays off. An approval
        # recorded now would let these details through a gate the organizer turns on later.
        if session.gate_approved_fingerprint:
            checkout.revoke_gate_approval(session)
        return GateDecision(True)
    gate = session.event.gate
    client_ip = client_ip or None
    if breaker_is_open(gate):
        # The policy answers at once, alike for everyone: the gate is not asked, so there is
        # nothing to probe and the rate limit is not counted (the decision is still logged).
        breaker_open = True
    else:
        if rate_limited(recent_calls(session, client_ip), client_ip):
            checkout.revoke_gate_approval(session)
            log.warning("gate rate limit hit: session %s, ip %s", session.public_id, client_ip or "?")
            return GateDecision(False, RATE_LIMITED_MESSAGE, "rate_limited")
        breaker_open = not breaker_admits(gate)  # after its cool-down: one caller wins the probe
    if breaker_open:
        answer = GateAnswer(GateCall.Outcome.ERROR, error="Circuit breaker open: the gate was not called.")
    else:
        answer = ask_gate(gate, validate_payload(session, line_items=line_items, answers=answers))
    allowed = lets_through(gate, answer)
    call = log_call(gate, session, answer, allowed=allowed, breaker_open=breaker_open, client_ip=client_ip)
    if not breaker_open:
        record_breaker_result(gate, answer.outcome)  # after the log: the breaker reads who failed from it
    if allowed:
        fingerprint = checkout.details_fingerprint(session, line_items=line_items, answers=answers)
        if not checkout.record_gate_approval(session, fingerprint):
            return GateDecision(False, DETAILS_CHANGED_MESSAGE, answer.outcome, call)
        return GateDecision(True, "", answer.outcome, call)
    checkout.revoke_gate_approval(session)
    if answer.outcome == GateCall.Outcome.DENIED:
        announce_denial(session, answer)
        return GateDecision(False, answer.message or gate.shown("denial_message"), answer.outcome, call)
    return GateDecision(False, gate.shown("error_message"), answer.outcome, call)


@dataclass(frozen=True)
class RecentCalls:
    """Gate decisions in the rate limit's window, capped at the limits (counting stops there)."""

    by_session: int
    by_address: int


def recent_calls(session, client_ip: str | None) -> RecentCalls:
    """The calls the rate limit weighs. Each count walks its own index
    (``gatecall_session_recent``, ``gatecall_client_recent``) and stops at its limit.

    ``session`` as its details were just saved. Details saved once (``details_version`` 1:
    an attendee's first Continue) are the only ones the session has had judged, and probing
    takes other details, so its count is 0 without a read (issue 26)."""
    since = timezone.now() - timedelta(seconds=settings.GATE_RATE_LIMIT_WINDOW_SECONDS)
    calls = GateCall.objects.filter(created_at__gt=since, is_test=False)
    by_session = 0
    if session.details_version > 1:
        by_session = calls.filter(session=session)[:settings.GATE_RATE_LIMIT_PER_SESSION].count()
    by_address = 0
    key = address_key(client_ip or "")
    if key:
        by_address = (calls.filter(event_id=session.event_id, address_key=key)
                      [:settings.GATE_RATE_LIMIT_PER_IP].count())
    return RecentCalls(by_session=by_session, by_address=by_address)


def announce_denial(session, answer: GateAnswer) -> None:
    """History and news: a ``gate_deny`` transition writes ``checkout.session.gate_denied``."""
    detail = f"gate denied (HTTP {answer.status_code})" + (f": {answer.message}" if answer.message else "")
    try:
        state.apply(session.pk, "gate_deny", Source.ATTENDEE, detail=detail)
    except state.InvalidTransition:
        pass  # the session moved on (expired, say) while the gate was asked: nothing to announce


def log_call(gate, session, answer: GateAnswer, *, allowed: bool, breaker_open: bool = False,
             is_test: bool = False, client_ip: str | None = None) -> GateCall:
    return GateCall.objects.create(
        event_id=gate.event_id, session=session, outcome=answer.outcome, decision="allow" if allowed else "deny",
        status_code=answer.status_code, latency_ms=answer.latency_ms, message=answer.message[:500],
        error=answer.error[:500], is_test=is_test, breaker_open=breaker_open, client_ip=client_ip,
        address_key=address_key(client_ip or ""),
    )


def send_test_request(gate: GateSettings) -> GateCall:
    """One real, signed call with a sample session, for the organizer ("Send test request").
    Logged as a test call; it does not move the breaker and decides nothing."""
    answer = ask_gate(gate, sample_payload(gate))
    allowed = lets_through(gate, answer)
    return log_call(gate, None, answer, allowed=allowed, is_test=True)


# --- Rate limit -------------------------------------------------------------------------------
def rate_limited(recent: RecentCalls, client_ip: str | None) -> bool:
    """True when this session, or this client address for this event, already had its
    share of gate decisions in the last ``GATE_RATE_LIMIT_WINDOW_SECONDS``.

    The call log is the counter (``recent_calls`` reads it): a sliding window over real
    rows, the same for every web process, no extra writes. Each count walks its own index
    (``gatecall_session_recent``, ``gatecall_client_recent``) and stops at the limit, so
    its cost does not grow with the event's traffic or with an attacker's attempts.
    Attempts refused here are not logged, so they do not extend the wait; a refused
    attendee gets through again once old calls leave the window.
    """
    return (recent.by_session >= settings.GATE_RATE_LIMIT_PER_SESSION
            or bool(client_ip) and recent.by_address >= settings.GATE_RATE_LIMIT_PER_IP)


# --- Circuit breaker ----------------------------------------------------------------------------
def breaker_is_open(gate: GateSettings) -> bool:
    """Is the breaker open, its cool-down not over? Read with the gate in this request: no query."""
    return gate.breaker_open_until is not None and gate.breaker_open_until > timezone.now()


def breaker_admits(gate: GateSettings) -> bool:
    """May we call the gate now? No while the breaker is open; once its cool-down is over,
    exactly one caller wins the probe (a conditional update) and the rest keep getting the
    policy until the probe's answer is known."""
    open_until = gate.breaker_open_until  # read with the gate in this request
    if open_until is None:
        return True
    if breaker_is_open(gate):
        return False
    probe_window = timedelta(milliseconds=gate.timeout_ms + 1000)
    won = GateSettings.objects.filter(pk=gate.pk, breaker_open_until=open_until).update(
        breaker_open_until=timezone.now() + probe_window
    )
    return bool(won)


def failing_clients(gate: GateSettings, failures: int) -> int:
    """How many clients the last ``failures`` calls (the consecutive errors) came from: one
    per address key (an IPv4 address, an IPv6 /64), and one per call without an address (an
    API-opened order, an exempt address: nobody to tell apart). Details that make the
    organizer's gate fail are an attendee's to type: one client alone must not open the
    breaker for every attendee (``GATE_BREAKER_MIN_CLIENTS``)."""
    keys = list(GateCall.objects.filter(event_id=gate.event_id, is_test=False, breaker_open=False)
                .order_by("-id").values_list("address_key", flat=True)[:failures])
    return len({key for key in keys if key}) + sum(1 for key in keys if not key)


def record_breaker_result(gate: GateSettings, outcome: str) -> None:
    """A real answer (allow or deny) closes the breaker; an error counts towards opening it."""
    if outcome != GateCall.Outcome.ERROR:
        if gate.consecutive_failures or gate.breaker_open_until:  # else nothing to reset: no query
            GateSettings.objects.filter(pk=gate.pk).update(consecutive_failures=0, breaker_open_until=None)
        return
    rows = GateSettings.objects.filter(pk=gate.pk)
    rows.update(consecutive_failures=F("consecutive_failures") + 1)
    failures = rows.values_list("consecutive_failures", flat=True).first() or 0
    if failures >= settings.GATE_BREAKER_FAILURES and failing_clients(gate, failures) >= settings.GATE_BREAKER_MIN_CLIENTS:
        until = timezone.now() + timedelta(seconds=settings.GATE_BREAKER_COOLDOWN_SECONDS)
        rows.update(breaker_open_until=until)
        log.warning("gate breaker open for event %s after %d failures, until %s", gate.event_id, failures, until)
