"""An event's orders through indexes of their own (issue 26): the overview's figures per event
from a covering index, one event's orders of an organization (the admin's list narrowed to an
event, its export) from another; the event's plain index gives way to the first (event first)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('checkout', '0014_address_key'),
        ('ievents', '0013_idempotency_records'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='checkoutsession',
            index=models.Index(fields=['organization', 'event', '-created_at'], name='session_org_event_recent'),
        ),
        migrations.AddIndex(
            model_name='checkoutsession',
            index=models.Index(fields=['event', 'status'], include=('id', 'amount_paid', 'amount_refunded', 'discount_total', 'needs_attention', 'promo_code_text'), name='session_event_figures'),
        ),
        migrations.AlterField(
            model_name='checkoutsession',
            name='event',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='checkout_sessions', to='ievents.event'),
        ),
    ]
