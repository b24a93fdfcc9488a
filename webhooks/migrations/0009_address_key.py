# client_address held an address *key* (an IPv4 address or an IPv6 /64): named for it.
# The database renames the column only; its index follows the column (PostgreSQL, and
# SQLite's RENAME COLUMN), so it is rebuilt in the migration state alone.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0008_inbound_duplicates_counted'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RenameField(model_name='gatecall', old_name='client_address', new_name='address_key'),
            ],
            state_operations=[
                migrations.RemoveIndex(model_name='gatecall', name='gatecall_client_recent'),
                migrations.RenameField(model_name='gatecall', old_name='client_address', new_name='address_key'),
                migrations.AddIndex(
                    model_name='gatecall',
                    index=models.Index(fields=['event', 'address_key', 'created_at'], name='gatecall_client_recent'),
                ),
            ],
        ),
    ]
