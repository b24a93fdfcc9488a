# client_address held an address *key* (an IPv4 address or an IPv6 /64): named for it.
# The database renames the column only; its indexes follow the column (PostgreSQL, and
# SQLite's RENAME COLUMN), so they are rebuilt in the migration state alone.

from django.db import migrations, models

RENAMED = ["attendeeemail", "checkoutsession", "promocodefailure"]


class Migration(migrations.Migration):

    dependencies = [
        ('checkout', '0013_promo_database_defaults'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RenameField(model_name=model, old_name='client_address', new_name='address_key')
                for model in RENAMED
            ],
            state_operations=[
                migrations.RemoveIndex(model_name='attendeeemail', name='attendee_email_recent_client'),
                migrations.RemoveIndex(model_name='checkoutsession', name='session_client_recent'),
                *[migrations.RenameField(model_name=model, old_name='client_address', new_name='address_key')
                  for model in RENAMED],
                migrations.AddIndex(
                    model_name='attendeeemail',
                    index=models.Index(fields=['kind', 'address_key', 'created_at'], name='attendee_email_recent_client'),
                ),
                migrations.AddIndex(
                    model_name='checkoutsession',
                    index=models.Index(condition=models.Q(('address_key', ''), _negated=True),
                                       fields=['event', 'address_key', 'created_at'], name='session_client_recent'),
                ),
            ],
        ),
    ]
