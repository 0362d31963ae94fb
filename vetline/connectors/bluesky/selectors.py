"""What the archive already holds for a Bluesky account: the state that capture compares the
network against. Using the archive (which Vetline keeps anyway) instead of a copy in the cursor
keeps the cursor a few bytes long whatever the size of the repository."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vetline.accounts.models import Network, SocialAccount
from vetline.archive.models import ArchivedRecord
from vetline.connectors.bluesky.mapping import cid_of_payload

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Head:
    """The latest archived version of one record."""

    version: int
    kind: str
    cid: str
    #: every CID archived for the record: a replayed older version is not a new edit
    known_cids: frozenset[str] = frozenset()

    @property
    def deleted(self) -> bool:
        return self.kind == "deletion"


def account_for(*, handle: str, did: str) -> SocialAccount | None:
    """The registered Bluesky account captured under ``handle`` (as registered in Vetline, with
    or without its "@"), or connected as ``did``."""
    bare = handle.lstrip("@")
    found = (
        SocialAccount.objects.filter(network=Network.BLUESKY, handle__in={bare, f"@{bare}"})
        .order_by("pk")
        .first()
    )
    if found is None and did:
        found = (
            SocialAccount.objects.filter(network=Network.BLUESKY, connection__remote_account_id=did)
            .order_by("pk")
            .first()
        )
    return found


def archived_heads(*, account_id: int, remote_ids: Iterable[str]) -> dict[str, Head]:
    wanted = sorted(set(remote_ids))
    latest: dict[str, tuple[int, str, str]] = {}
    cids: dict[str, set[str]] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = ArchivedRecord.objects.filter(
            account_id=account_id,
            network=Network.BLUESKY,
            remote_id__in=wanted[start : start + _CHUNK],
        ).values_list("remote_id", "version", "kind", "raw_payload")
        for remote_id, version, kind, payload in rows:
            cid = cid_of_payload(bytes(payload))
            if cid:
                cids.setdefault(remote_id, set()).add(cid)
            if remote_id not in latest or latest[remote_id][0] < version:
                latest[remote_id] = (version, kind, cid)
    heads: dict[str, Head] = {}
    for remote_id, (version, kind, cid) in latest.items():
        heads[remote_id] = Head(version, kind, cid, frozenset(cids.get(remote_id, ())))
    return heads


def live_record_ids(*, account_id: int, repo_did: str) -> set[str]:
    """The records of the account's own repository that the archive holds as not deleted
    (profile snapshots excluded: they are versions of one record, identified by content)."""
    latest: dict[str, tuple[int, str]] = {}
    rows = ArchivedRecord.objects.filter(
        account_id=account_id,
        network=Network.BLUESKY,
        remote_id__startswith=f"at://{repo_did}/",
    ).values_list("remote_id", "version", "kind")
    for remote_id, version, kind in rows.iterator(chunk_size=2000):
        if kind == "profile_snapshot":
            continue
        if remote_id not in latest or latest[remote_id][0] < version:
            latest[remote_id] = (version, kind)
    return {rid for rid, (_, kind) in latest.items() if kind != "deletion"}
