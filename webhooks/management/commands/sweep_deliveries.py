"""``manage.py sweep_deliveries``: what the periodic sweep does, once, by hand or from cron."""

from django.core.management.base import BaseCommand

from webhooks import delivery


class Command(BaseCommand):
    help = ("Enqueue every overdue webhook delivery (lost broker messages, dead workers). "
            "With --inline, deliver them in this process instead, without a broker.")

    def add_arguments(self, parser):
        parser.add_argument("--inline", action="store_true", help="Send here and now instead of enqueueing.")
        parser.add_argument("--limit", type=int, default=1000)

    def handle(self, *args, inline=False, limit=1000, **options):
        if inline:
            outcomes = []
            count = delivery.sweep(limit=limit, enqueue=lambda pk: outcomes.append(delivery.deliver(pk)))
            succeeded = sum(1 for o in outcomes if o.status == "succeeded")
            self.stdout.write(f"Attempted {count} overdue deliveries: {succeeded} succeeded.")
        else:
            count = delivery.sweep(limit=limit)
            self.stdout.write(f"Enqueued {count} overdue deliveries.")
