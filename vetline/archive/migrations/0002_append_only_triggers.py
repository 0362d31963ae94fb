"""Database-level guarantee that archived records and the integrity log are append-only.

Even a direct SQL UPDATE or DELETE (a DBA's shell, a bug, an attacker with the app's DB role)
is refused by the database itself. Same pattern as audit's migration 0003.
"""

from django.db import migrations

TABLES = ("archive_archivedrecord", "archive_logleaf", "archive_lognode", "archive_treehead")

SQLITE_UP = [
    stmt
    for table in TABLES
    for stmt in (
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, 'the archive is append-only'); END;""",
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, 'the archive is append-only'); END;""",
    )
]
SQLITE_DOWN = [
    stmt
    for table in TABLES
    for stmt in (
        f"DROP TRIGGER IF EXISTS {table}_no_update;",
        f"DROP TRIGGER IF EXISTS {table}_no_delete;",
    )
]
POSTGRES_UP = [
    """CREATE OR REPLACE FUNCTION vetline_archive_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'the archive is append-only'; END; $$ LANGUAGE plpgsql;""",
] + [
    stmt
    for table in TABLES
    for stmt in (
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION vetline_archive_append_only();""",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION vetline_archive_append_only();""",
    )
]
POSTGRES_DOWN = [
    stmt
    for table in TABLES
    for stmt in (
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};",
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};",
    )
] + ["DROP FUNCTION IF EXISTS vetline_archive_append_only();"]


def _run(statements_by_vendor):  # type: ignore[no-untyped-def]
    def apply(apps, schema_editor):  # type: ignore[no-untyped-def]
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("archive", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}),
            _run({"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}),
        )
    ]
