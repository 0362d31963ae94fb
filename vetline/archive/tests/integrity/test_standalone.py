"""The standalone verifier, run as an auditor would: a subprocess on an export directory."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vetline.archive import standalone_verifier
from vetline.archive.integrity.manifest import ManifestError, ManifestRecord, write_manifest

from .factories import build_log

VERIFIER = Path(standalone_verifier.__file__)


def make_export(tmp_path: Path, n: int = 12) -> tuple[Path, str]:
    log = build_log(n, head_every=4)
    export = tmp_path / "export"
    (export / "eml").mkdir(parents=True)
    for i in range(n):
        (export / "eml" / f"{i:04d}.eml").write_text(f"Subject: record {i}\n\nhello {i}\n")
    (export / "records.csv").write_text("index,text\n" + "".join(f"{i},x\n" for i in range(n)))
    shutil.copy(VERIFIER, export / "standalone_verifier.py")
    records = [
        ManifestRecord(i, log.leaves[i] if i % 3 else None, [f"eml/{i:04d}.eml"]) for i in range(n)
    ]
    head = log.heads[-1]
    write_manifest(export, tree=log.tree, tree_head=head, signer=log.signer, records=records)
    return export, log.signer.key_id.hex()


def run(export: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(export / "standalone_verifier.py"), str(export), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_verifier_imports_only_the_standard_library() -> None:
    tree = ast.parse(VERIFIER.read_text())
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    assert modules <= set(sys.stdlib_module_names) | {"__future__"}


def test_intact_export_verifies(tmp_path: Path) -> None:
    export, key_id = make_export(tmp_path)
    result = run(export, "--trusted-key-id", key_id)
    assert result.returncode == 0, result.stdout
    assert "RESULT: VERIFIED" in result.stdout
    assert "all 12 records are in the signed log" in result.stdout


def test_edited_file_fails_and_is_named(tmp_path: Path) -> None:
    export, _ = make_export(tmp_path)
    target = export / "eml" / "0005.eml"
    target.write_text(target.read_text().replace("hello", "HELLO"))
    result = run(export)
    assert result.returncode == 1
    assert "eml/0005.eml: SHA-256 mismatch" in result.stdout
    assert "RESULT: FAILED" in result.stdout


def test_edited_file_with_manifest_updated_fails(tmp_path: Path) -> None:
    export, _ = make_export(tmp_path)
    target = export / "records.csv"
    target.write_text("index,text\n0,forged\n")
    manifest = json.loads((export / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == "records.csv":
            entry["sha256"] = standalone_verifier._sha256_file(target)[0].hex()
            entry["size"] = target.stat().st_size
    (export / "manifest.json").write_text(json.dumps(manifest))
    result = run(export)
    assert result.returncode == 1
    assert "manifest.json was modified after it was signed" in result.stdout


def test_deleted_and_added_files(tmp_path: Path) -> None:
    export, _ = make_export(tmp_path)
    (export / "eml" / "0001.eml").unlink()
    (export / "smuggled.txt").write_text("not covered")
    result = run(export)
    assert result.returncode == 1
    assert "eml/0001.eml: listed in the manifest but missing" in result.stdout
    assert "smuggled.txt: present in the export but not listed" in result.stdout


def test_untrusted_key_is_refused(tmp_path: Path) -> None:
    export, _ = make_export(tmp_path)
    result = run(export, "--trusted-key-id", "00" * 32)
    assert result.returncode == 1
    assert "not one of the --trusted-key-id keys" in result.stdout


def test_tampered_proof_and_head_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export, _ = make_export(tmp_path)
    manifest_path = export / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["records"][2]["inclusion_proof"][0] = "00" * 32
    manifest["tree_head"]["tree_size"] += 1
    manifest_path.write_text(json.dumps(manifest))
    report = standalone_verifier.verify_package(export, [])
    text = "\n".join(report.failures)
    assert "tree head signature does not verify" in text
    assert "manifest.json was modified after it was signed" in text
    manifest["tree_head"]["tree_size"] -= 1
    manifest_path.write_text(json.dumps(manifest))
    report = standalone_verifier.verify_package(export, [])
    assert any("log index 2: its inclusion proof does not lead" in f for f in report.failures)


def test_modified_leaf_bytes_detected(tmp_path: Path) -> None:
    export, _ = make_export(tmp_path)
    manifest_path = export / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    import base64

    entry = manifest["records"][1]
    data = bytearray(base64.b64decode(entry["leaf_bytes_b64"]))
    data[30] ^= 1
    entry["leaf_bytes_b64"] = base64.b64encode(bytes(data)).decode()
    manifest_path.write_text(json.dumps(manifest))
    report = standalone_verifier.verify_package(export, [])
    assert any("log index 1: its leaf bytes do not hash" in f for f in report.failures)


def test_missing_manifest_exit_code(tmp_path: Path) -> None:
    export = tmp_path / "empty"
    export.mkdir()
    shutil.copy(VERIFIER, export / "standalone_verifier.py")
    result = run(export)
    assert result.returncode == 2


def test_writer_refuses_a_head_of_another_log(tmp_path: Path) -> None:
    log = build_log(6)
    other = build_log(6, signer=log.signer)
    tmp_path.mkdir(exist_ok=True)
    # same signer and sizes, different content (timestamps inside differ only by key) -> compare
    forged_head = log.signer.sign_tree_head(tree_size=6, root_hash=b"\x09" * 32, timestamp_ms=1)
    with pytest.raises(ManifestError):
        write_manifest(
            tmp_path, tree=other.tree, tree_head=forged_head, signer=log.signer, records=[]
        )
