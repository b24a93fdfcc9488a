"""Checkout timers and the ticket email. Thin wrappers: the rules are in ``checkout.services``."""

from celery import shared_task

from . import attendee_emails, emails, services


@shared_task
def release_expired_holds() -> int:
    return services.release_expired_holds()


@shared_task(name="checkout.tasks.sweep_confirmations", ignore_result=True)
def sweep_confirmations() -> int:
    return emails.sweep_confirmations()


@shared_task(name="checkout.tasks.send_attendee_email", ignore_result=True)
def send_attendee_email(key: str) -> bool:
    return attendee_emails.send(key)


@shared_task(name="checkout.tasks.sweep_attendee_emails", ignore_result=True)
def sweep_attendee_emails() -> int:
    return attendee_emails.sweep()
