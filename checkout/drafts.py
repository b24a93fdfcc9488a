"""What the attendee typed, kept in their own browser session so an expired hold does not
cost them their answers: the next checkout for the same event starts with them.

Kept per event in Django's session (the attendee's cookie), never in the checkout session,
which ends with the hold. Cleared once the order completes.
"""

from __future__ import annotations

MAX_CHARS = 1000  # per value: nothing a form field accepts is longer


def _key(kind: str, event) -> str:
    return f"checkout_{kind}:{event.public_id}"


def _typed(form) -> dict:
    """The form's submitted values, as its widgets read them (a tick box as True/False)."""
    values = {}
    for name, field in form.fields.items():
        value = field.widget.value_from_datadict(form.data, form.files, form.add_prefix(name))
        if isinstance(value, str):
            value = value[:MAX_CHARS]
        elif not isinstance(value, bool):
            continue
        values[name] = value
    return values


def keep_details(request, event, form) -> None:
    request.session[_key("details", event)] = _typed(form)


def details(request, event) -> dict:
    return dict(request.session.get(_key("details", event), {}))


def keep_picks(request, event, form) -> None:
    request.session[_key("picks", event)] = {name: value for name, value in _typed(form).items() if value}


def picks(request, event) -> dict:
    return dict(request.session.get(_key("picks", event), {}))


def forget(request, event) -> None:
    for kind in ("details", "picks"):
        request.session.pop(_key(kind, event), None)
