"""PostgreSQL full-text search reads a stored tsvector instead of recomputing it per row.

Migration 0004 indexed the expression ``to_tsvector('simple', regexp_replace(text, …))``. The
GIN index finds the matches, but every plan that walks the (account_id, captured_at, id) index
in page order and tests each row (the fast plan when a word is common) recomputed the
expression for the row, about 20 µs each, so plans over many rows were slow and PostgreSQL
chose between them on a cost that was mostly that recomputation. Now the vector is stored in
``search_tsv`` and GIN-indexed; testing a row costs about 1 µs.

Why a column kept by a trigger and not a generated column: the disposal guard of migration 0006
compares the whole new row with the expected one in a BEFORE UPDATE trigger, and PostgreSQL
shows a generated column as NULL there, so every documented disposal would be refused. BEFORE
triggers fire in name order: the guard (``…_append_only``) runs first and sees ``search_tsv``
unchanged (an UPDATE never sets it), then ``…_search_tsv`` recomputes it from the new text, so a
disposal blanks the vector with the text. Any UPDATE that sets ``search_tsv`` itself is refused
by the guard. The column is not a model field: Django never reads or writes it.

The column is filled with ``ADD COLUMN … GENERATED … STORED`` (one rewrite of the table, no
UPDATE, so the guard is never bypassed) and then made a plain column with ``DROP EXPRESSION``.
SQLite: nothing (its FTS5 table of 0004 is unchanged).
"""

from django.db import migrations

TSV_OF_TEXT = "to_tsvector('simple'::regconfig, regexp_replace({}, '[^[:alnum:]]+', ' ', 'g'))"
TSV_INDEX = (
    "CREATE INDEX IF NOT EXISTS archive_record_search_tsv ON archive_archivedrecord"
    " USING gin (search_tsv);"
)
TSV_TRIGGER = (
    "CREATE TRIGGER archive_archivedrecord_search_tsv BEFORE INSERT OR UPDATE"
    " ON archive_archivedrecord FOR EACH ROW EXECUTE FUNCTION vetline_archive_search_tsv();"
)
POSTGRES_UP = [
    "ALTER TABLE archive_archivedrecord ADD COLUMN search_tsv tsvector"
    f" GENERATED ALWAYS AS ({TSV_OF_TEXT.format('text')}) STORED;",
    "ALTER TABLE archive_archivedrecord ALTER COLUMN search_tsv DROP EXPRESSION;",
    f"""CREATE OR REPLACE FUNCTION vetline_archive_search_tsv() RETURNS trigger AS $$
        BEGIN
            NEW.search_tsv := {TSV_OF_TEXT.format("NEW.text")};
            RETURN NEW;
        END; $$ LANGUAGE plpgsql;""",
    TSV_TRIGGER,
    TSV_INDEX,
    "DROP INDEX IF EXISTS archive_record_text_fts;",
    # Statistics for the new column now, not at the next autovacuum: without them PostgreSQL
    # guesses every word matches 0.5% of records and picks plans accordingly.
    "ANALYZE archive_archivedrecord;",
]
POSTGRES_DOWN = [
    "CREATE INDEX IF NOT EXISTS archive_record_text_fts ON archive_archivedrecord"
    f" USING gin (({TSV_OF_TEXT.format('text')}));",
    "DROP INDEX IF EXISTS archive_record_search_tsv;",
    "DROP TRIGGER IF EXISTS archive_archivedrecord_search_tsv ON archive_archivedrecord;",
    "DROP FUNCTION IF EXISTS vetline_archive_search_tsv();",
    "ALTER TABLE archive_archivedrecord DROP COLUMN IF EXISTS search_tsv;",
]


def _run(statements_by_vendor):  # type: ignore[no-untyped-def]
    def apply(apps, schema_editor):  # type: ignore[no-untyped-def]
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("archive", "0006_retention_defaults_and_disposal_guard")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_UP}),
            _run({"postgresql": POSTGRES_DOWN}),
        ),
    ]
