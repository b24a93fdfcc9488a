"""What the attendee typed, kept in their own browser session so an expired hold does not
cost them their answers: the next checkout for the same event starts with them.

Kept per event in Django's session (the attendee's cookie), never in the checkout session,
which ends with the hold. Written only when the details could not be saved (a form error, a
refusal, a hold that ran out) or when the attendee starts again; read only by a browser
that has a session: the ordinary purchase pays no session query. Cleared once the order
completes.
"""

from __future__ import annotations

from importlib import import_module

from django.conf import settings

MAX_CHARS = 1000  # per value: nothing a form field accepts is longer


def _key(kind: str, event) -> str:
    return f"checkout_{kind}:{event.public_id}"


def _has_session(request) -> bool:
    return settings.SESSION_COOKIE_NAME in request.COOKIES


def typed(form) -> dict:
    """The form's submitted values, as its widgets read them (a tick box as True/False)."""
    values = {}
    for name, field in form.fields.items():
        value = field.widget.value_from_datadict(form.data, form.files, form.add_prefix(name))
        if isinstance(value, str):
            values[name] = value[:MAX_CHARS]
        elif isinstance(value, bool):
            values[name] = value
    return values


def keep(request, event, *, details: dict | None = None, picks: dict | None = None) -> None:
    if details is not None:
        request.session[_key("details", event)] = details
    if picks is not None:
        request.session[_key("picks", event)] = picks


def details(request, event) -> dict:
    return dict(request.session.get(_key("details", event), {})) if _has_session(request) else {}


def picks(request, event) -> dict:
    return dict(request.session.get(_key("picks", event), {})) if _has_session(request) else {}


def forget(request, event) -> None:
    if _has_session(request):
        for kind in ("details", "picks"):
            request.session.pop(_key(kind, event), None)  # writes the session only if it held one


def forget_addresses(addresses: set[str]) -> int:
    """Drop every kept draft whose email is one of ``addresses`` (lower case), in every
    browser session the store holds: an erasure on request reaches them too. Expired
    sessions are cleared first (their drafts are nobody's any more). Returns the drafts
    dropped. Reads each live session once: erasures are rare, sessions few (only attendees
    whose details could not be saved, and organizers, have one)."""
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    store_class.clear_expired()
    get_model = getattr(store_class, "get_model_class", None)
    if get_model is None:  # a cookie or cache session store: nothing here to search
        return 0
    dropped = 0
    for row in get_model().objects.iterator():
        store = store_class(session_key=row.session_key)
        data = store.decode(row.session_data)
        mine = [key for key, value in data.items() if key.startswith("checkout_details:") and isinstance(value, dict)
                and str(value.get("email", "")).strip().lower() in addresses]
        if mine:
            for key in mine:
                store.pop(key)
            store.save()
            dropped += len(mine)
    return dropped
