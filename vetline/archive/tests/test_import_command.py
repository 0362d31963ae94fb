"""`vetline archive import` on hostile files: an enormous JSONL line is not read into memory and
is quarantined (its prefix) while the other lines import; an unreadable CSV row stops the import
with a clear message after everything before it is archived."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from vetline.archive.management.commands.archive import iter_jsonl
from vetline.archive.models import ArchivedRecord, QuarantinedItem
from vetline.archive.tests.conftest import item

pytestmark = pytest.mark.django_db


def test_iter_jsonl_bounds_each_line(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b"x" * 5000 + b"\n" + b'{"b": 2}\r\n' + b"y" * 3000)
    seen: list[tuple[int, int]] = []
    lines = list(iter_jsonl(path, max_line=1000, on_oversized=lambda o, n: seen.append((o, n))))
    assert [len(b) for b, _ in lines] == [8, 1001, 8, 1001]
    assert lines[1][0] == b"x" * 1001 and lines[2][0] == b'{"b": 2}'
    assert seen == [(9, 5001), (9 + 5001 + 10, 3000)]
    assert lines[-1][1] == path.stat().st_size


def test_an_enormous_line_is_quarantined_and_the_rest_imported(
    world: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vetline.archive.management.commands import archive

    monkeypatch.setattr(archive, "MAX_LINE_BYTES", 10_000)
    monkeypatch.setattr(archive, "KEPT_PREFIX", 100)
    huge = json.dumps(item("huge", text="z" * 50_000)).encode()
    path = tmp_path / "f.jsonl"
    path.write_bytes(
        json.dumps(item("a")).encode() + b"\n" + huge + b"\n" + json.dumps(item("b")).encode()
    )
    call_command("archive", "import", str(path), "--account", str(world.corporate.pk), "--quiet")
    captured = capsys.readouterr()
    assert "3 items: 2 archived, 0 duplicates, 1 quarantined" in captured.out
    assert "over the 10,000-byte limit" in captured.err
    assert set(ArchivedRecord.objects.values_list("remote_id", flat=True)) == {"a", "b"}
    kept = QuarantinedItem.objects.get()
    assert bytes(kept.raw) == huge[:100] and "JSON" in kept.reason


def test_an_unreadable_csv_row_stops_with_a_clear_message(
    world: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vetline.archive.management.commands import archive

    monkeypatch.setattr(archive, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "f.csv"
    path.write_text(
        "remote_id,kind,direction,text\n"
        "c1,post,outbound,first\n"
        f"c2,post,outbound,{'w' * 5000}\n"
        "c3,post,outbound,third\n",
        encoding="utf-8",
    )
    with pytest.raises(
        CommandError, match="CSV row 2 after the header: field larger than field limit"
    ):
        call_command(
            "archive", "import", str(path), "--account", str(world.corporate.pk), "--quiet"
        )
    assert "1 items: 1 archived" in capsys.readouterr().out
    assert list(ArchivedRecord.objects.values_list("remote_id", flat=True)) == ["c1"]
