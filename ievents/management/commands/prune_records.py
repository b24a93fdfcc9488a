"""Run the retention pass by hand (celery beat runs it every RETENTION_INTERVAL_SECONDS)."""

import logging

from django.core.management.base import BaseCommand

from ievents.operations import retention


class Command(BaseCommand):
    help = ("Delete logs older than their retention period and erase the personal data of orders whose time is up, "
            "in small batches (docs/operations.md).")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted or erased.")
        parser.add_argument("--batch-size", type=int, default=None, help="Rows per transaction (RETENTION_BATCH_SIZE).")

    def handle(self, *args, dry_run=False, batch_size=None, verbosity=1, **options):
        if verbosity >= 1:  # the pass logs its progress; show it here as it goes
            handler = logging.StreamHandler(self.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            logger = logging.getLogger(retention.__name__)
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
        report = retention.prune(dry_run=dry_run, batch_size=batch_size)
        verb = "would handle" if dry_run else "handled"
        for name, rows in report.items():
            self.stdout.write(f"{name}: {verb} {rows} rows")
