from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from ievents.crypto import EncryptedTextField


class Command(BaseCommand):
    help = ("Re-encrypt every stored secret under the first key of FIELD_ENCRYPTION_KEYS. "
            "Put the new key first, run this, then remove the old keys.")

    def handle(self, **options):
        total = 0
        for model in apps.get_models():
            names = [f.name for f in model._meta.fields if isinstance(f, EncryptedTextField)]
            if not names:
                continue
            with transaction.atomic():
                # Reading decrypts with whichever key fits; writing encrypts with the first.
                for row in model.objects.select_for_update().only("pk", *names):
                    model.objects.filter(pk=row.pk).update(**{name: getattr(row, name) for name in names})
                    total += 1
        self.stdout.write(f"Re-encrypted the secrets of {total} rows.")
