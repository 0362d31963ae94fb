"""The archive's integrity log: pure Python, no Django (RFC 6962 Merkle log, Ed25519 heads).

* :mod:`.merkle`    — tree heads, inclusion / consistency proofs and their verifiers
* :mod:`.canonical` — the exact leaf bytes of records, audit events and disposals
* :mod:`.sth`       — signed tree heads, keys, rotation
* :mod:`.verify`    — full verification with precise findings
* :mod:`.manifest`  — export manifest writer (checked by ``archive/standalone_verifier.py``)
"""
