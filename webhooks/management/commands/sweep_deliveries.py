"""``manage.py sweep_deliveries``: what the periodic sweep does, once, by hand or from cron."""

from django.core.management.base import BaseCommand

from webhooks import delivery, tasks


class Command(BaseCommand):
    help = ("Enqueue every overdue webhook delivery (lost broker messages, dead workers). "
            "With --inline, deliver them in this process instead, without a broker.")

    def add_arguments(self, parser):
        parser.add_argument("--inline", action="store_true", help="Send here and now instead of enqueueing.")
        parser.add_argument("--limit", type=int, default=1000)

    def handle(self, *args, inline=False, limit=1000, **options):
        if inline:
            reports = [delivery.deliver(pk) for pk in delivery.overdue(limit=limit)]
            succeeded = sum(1 for r in reports if r.status == "succeeded")
            self.stdout.write(f"Attempted {len(reports)} overdue deliveries: {succeeded} succeeded.")
        else:
            count = tasks.enqueue_all(delivery.overdue(limit=limit))
            self.stdout.write(f"Enqueued {count} overdue deliveries.")
