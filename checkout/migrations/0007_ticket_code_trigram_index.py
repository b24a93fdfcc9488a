"""A trigram index for the admin's search by ticket code on PostgreSQL.

Django's admin searches with ``icontains`` (``UPPER(column::text) LIKE UPPER('%…%')``),
which no b-tree can answer: a search by ticket code would read every ticket of a year
(millions; an order's tickets are not filtered by organization first). A GIN index of the
same expression with ``gin_trgm_ops`` answers it from the index, and ticket codes are
random, so their trigrams are rare and the index lookups short.

Emails, names and order references get none on purpose: the admin's search is always
within one organization (its orders, found by the organization's index, are filtered
directly), and their trigrams are common (every "@gmail.com" shares them), so a trigram
index made the search by email *slower* on a year of data (bench_scale: ~0.6 s p50 with
one, against a scan of the organization's orders without).

It exists only on PostgreSQL (SQLite has no GIN, and its development databases are small),
so it is written here rather than in the model's ``Meta``, and the operation skips other
databases the way Django's own ``CreateExtension`` does.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

# (index name, table, column)
SEARCHED = [
    ("ticket_code_trgm", "checkout_ticket", "code"),
]


class RunSQLOnPostgreSQL(migrations.RunSQL):
    """``RunSQL`` that leaves other databases alone (as ``CreateExtension`` does)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):

    dependencies = [
        ("checkout", "0006_erasure_record_and_retention_indexes"),
    ]

    operations = [
        TrigramExtension(),
        *(
            RunSQLOnPostgreSQL(
                f'CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ((UPPER("{column}"::text)) gin_trgm_ops)',
                f"DROP INDEX IF EXISTS {name}",
            )
            for name, table, column in SEARCHED
        ),
    ]
