"""Trigram indexes for the admin's order search on PostgreSQL.

Django's admin searches with ``icontains`` (``UPPER(column::text) LIKE UPPER('%…%')``),
which no b-tree can answer: without these, a search by email or ticket code reads every
order or ticket of a year. A GIN index of the same expression with ``gin_trgm_ops`` answers
it from the index. They exist only on PostgreSQL (SQLite has no GIN, and its development
databases are small), so they are written here rather than in the models' ``Meta``, and the
operation skips other databases the way Django's own ``CreateExtension`` does.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

# (index name, table, column): the columns the admin's order search looks in.
SEARCHED = [
    ("session_email_trgm", "checkout_checkoutsession", "customer_email"),
    ("session_name_trgm", "checkout_checkoutsession", "customer_name"),
    ("session_public_id_trgm", "checkout_checkoutsession", "public_id"),
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
        ("checkout", "0004_erasure_record_and_retention_indexes"),
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
