"""Retention defaults, and the one controlled change the archive allows: documented disposal.

1. Seeds the record classes with the FINRA 4511 / SEC 17a-4 periods (see archive/retention.py).
2. Replaces the append-only trigger on archived records (migration 0002) with a guard that
   still refuses every DELETE and every UPDATE, except one: replacing a record's content
   (text, participants, attachments, raw payload) with exactly the tombstone stored in the
   record's DisposalRecord, every other column unchanged. No DisposalRecord, no change.
3. Makes disposal records append-only (no UPDATE, DELETE or TRUNCATE).

``vetline/conftest.py`` drops and recreates these triggers around test-suite flushes only.
"""

from django.db import migrations

# Columns an allowed disposal must leave as they were (the record's metadata).
KEPT_COLUMNS = (
    "id",
    "network",
    "account_id",
    "remote_id",
    "version",
    "previous_log_index",
    "record_class",
    "kind",
    "direction",
    "author_handle",
    "conversation_id",
    "thread_id",
    "parent_remote_id",
    "network_timestamp",
    "captured_at",
    "raw_payload_sha256",
    "content_sha256",
    "adopted",
    "approval_ref",
    "source",
    "log_index",
)
_REFUSED = "the archive is append-only: only a documented disposal may remove a record''s content"
_UNCHANGED = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in KEPT_COLUMNS)

# The guard keeps the trigger names of migration 0002, so whatever drops or recreates those
# (the fault-injection tests, the test suite's flush) handles this guard too.
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS archive_archivedrecord_no_update;",
    "DROP TRIGGER IF EXISTS archive_disposalrecord_no_update;",
    "DROP TRIGGER IF EXISTS archive_disposalrecord_no_delete;",
]
SQLITE_UP = [
    "DROP TRIGGER IF EXISTS archive_archivedrecord_no_update;",
    f"""CREATE TRIGGER archive_archivedrecord_no_update
        BEFORE UPDATE ON archive_archivedrecord
        WHEN NOT (
            EXISTS (SELECT 1 FROM archive_disposalrecord d
                    WHERE d.record_id = OLD.id AND d.tombstone = NEW.raw_payload)
            AND NEW.text = '' AND NEW.participants = '[]' AND NEW.attachments = '[]'
            AND {_UNCHANGED})
        BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END;""",  # noqa: S608 (constants only)
    """CREATE TRIGGER archive_disposalrecord_no_update BEFORE UPDATE ON archive_disposalrecord
        BEGIN SELECT RAISE(ABORT, 'disposal records are append-only'); END;""",
    """CREATE TRIGGER archive_disposalrecord_no_delete BEFORE DELETE ON archive_disposalrecord
        BEGIN SELECT RAISE(ABORT, 'disposal records are append-only'); END;""",
]
SQLITE_DOWN = [
    *SQLITE_DROP,
    """CREATE TRIGGER archive_archivedrecord_no_update BEFORE UPDATE ON archive_archivedrecord
        BEGIN SELECT RAISE(ABORT, 'the archive is append-only'); END;""",
]

POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS archive_archivedrecord_append_only ON archive_archivedrecord;",
    "DROP TRIGGER IF EXISTS archive_disposalrecord_append_only ON archive_disposalrecord;",
    "DROP TRIGGER IF EXISTS archive_disposalrecord_no_truncate ON archive_disposalrecord;",
    "DROP FUNCTION IF EXISTS vetline_archive_record_guard();",
    "DROP FUNCTION IF EXISTS vetline_archive_retention_append_only();",
]
POSTGRES_UP = [
    "DROP TRIGGER IF EXISTS archive_archivedrecord_append_only ON archive_archivedrecord;",
    f"""CREATE OR REPLACE FUNCTION vetline_archive_record_guard() RETURNS trigger AS $$
        DECLARE expected RECORD;
        BEGIN
            IF TG_OP <> 'UPDATE' THEN
                RAISE EXCEPTION 'the archive is append-only';
            END IF;
            expected := OLD;
            expected.text := '';
            expected.participants := '[]'::jsonb;
            expected.attachments := '[]'::jsonb;
            SELECT d.tombstone INTO expected.raw_payload
                FROM archive_disposalrecord d WHERE d.record_id = OLD.id;
            IF NOT FOUND OR NEW IS DISTINCT FROM expected THEN
                RAISE EXCEPTION '{_REFUSED}';
            END IF;
            RETURN NEW;
        END; $$ LANGUAGE plpgsql;""",  # noqa: S608 (constants only)
    """CREATE TRIGGER archive_archivedrecord_append_only BEFORE UPDATE OR DELETE
        ON archive_archivedrecord FOR EACH ROW EXECUTE FUNCTION vetline_archive_record_guard();""",
    """CREATE OR REPLACE FUNCTION vetline_archive_retention_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'disposal records are append-only'; END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER archive_disposalrecord_append_only BEFORE UPDATE OR DELETE
        ON archive_disposalrecord FOR EACH ROW
        EXECUTE FUNCTION vetline_archive_retention_append_only();""",
    """CREATE TRIGGER archive_disposalrecord_no_truncate BEFORE TRUNCATE
        ON archive_disposalrecord FOR EACH STATEMENT
        EXECUTE FUNCTION vetline_archive_retention_append_only();""",
]
POSTGRES_DOWN = [
    *POSTGRES_DROP,
    """CREATE TRIGGER archive_archivedrecord_append_only BEFORE UPDATE OR DELETE
        ON archive_archivedrecord FOR EACH ROW EXECUTE FUNCTION vetline_archive_append_only();""",
]


def _run(statements_by_vendor):  # type: ignore[no-untyped-def]
    def apply(apps, schema_editor):  # type: ignore[no-untyped-def]
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return apply


def seed_classes(apps, schema_editor):  # type: ignore[no-untyped-def]
    from vetline.archive.retention import DEFAULT_CLASSES

    record_class = apps.get_model("archive", "RecordClass")
    for c in DEFAULT_CLASSES:
        record_class.objects.get_or_create(
            code=c.code,
            defaults={
                "label": c.label,
                "retention_days": c.retention_days,
                "easily_accessible_days": c.easily_accessible_days,
                "regulatory_basis": c.regulatory_basis,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("archive", "0005_retention")]

    operations = [
        migrations.RunPython(seed_classes, migrations.RunPython.noop),
        migrations.RunPython(
            _run({"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}),
            _run({"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}),
        ),
    ]
