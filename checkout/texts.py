"""Messages written by other modules in English and shown to the attendee in their language.

The services and the gate raise and return their messages as plain English strings (the API
and the logs want them so). The pages translate them when they show them: a message listed
here is translated; any other text is shown as written, because it is the organizer's own
(a gate's denial, or a denial message the organizer typed in the admin).
"""

from django.utils.translation import gettext, gettext_noop

KNOWN = frozenset({
    # checkout.services
    gettext_noop("This event is not on sale."),
    gettext_noop("Choose at least one ticket."),
    gettext_noop("That ticket type belongs to another event."),
    gettext_noop("Quantities cannot be negative."),
    gettext_noop("This checkout can no longer be changed."),
    gettext_noop("Your ticket hold has expired."),
    gettext_noop("This checkout can no longer be paid."),
    gettext_noop("Please confirm your details before paying."),
    gettext_noop("Your payment has already started with the details that were approved, so they can no longer "
                 "be changed. Finish the payment, or cancel this order and start again."),
    # payments.services
    gettext_noop("The payment could not be started. Please try again or choose another method."),
    gettext_noop("MB WAY needs a Portuguese mobile number: 9 digits, starting with 9."),
    # webhooks.gate, and the gate settings' defaults (webhooks.models.GateSettings)
    gettext_noop("Too many attempts. Please wait a few minutes before trying again."),
    gettext_noop("Your details changed while we were checking them. Please check them and continue again."),
    gettext_noop("This purchase could not be approved. Please contact the organizer."),
    gettext_noop("We could not check your purchase right now. Please try again in a few minutes."),
    # checkout.models.Status, for the rare states the status page names
    gettext_noop("Refunded"),
    gettext_noop("Partially refunded"),
    # checkout.invoice
    gettext_noop("This NIF is not valid: check its nine digits."),
    gettext_noop("This VAT number is not valid: write it with its country code, such as ES12345678Z."),
    # payment providers' names, as payments.* label them
    gettext_noop("Sandbox (test payment)"),
    gettext_noop("Multibanco or MB WAY (Easypay)"),
    gettext_noop("Multibanco or MB WAY (Ifthenpay)"),
    gettext_noop("Card (Stripe)"),
})


def shown(message: str) -> str:
    """``message`` in the attendee's language when it is one of ours, else as written."""
    return gettext(message) if message in KNOWN else message
