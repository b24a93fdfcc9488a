"""The organizer's texts that attendees read, in each language (django-modeltranslation).

Each field listed here gets one column per language (``name_en``, ``name_pt_pt``); the
field itself (``event.name``) reads the active language's text, or the other language's
when that one is empty (``MODELTRANSLATION_FALLBACK_LANGUAGES``). Whatever is built for an
attendee outside their request (the gate's payload, notifications, emails, the CSV) is built
under the order's language (``CheckoutSession.language``), so it says what they saw.
"""

from modeltranslation.translator import TranslationOptions, register

from .models import Event, Question, TicketType


@register(Event)
class EventTranslation(TranslationOptions):
    fields = ("name", "description")


@register(TicketType)
class TicketTypeTranslation(TranslationOptions):
    fields = ("name",)


@register(Question)
class QuestionTranslation(TranslationOptions):
    fields = ("text", "choices")
