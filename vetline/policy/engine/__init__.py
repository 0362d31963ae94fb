"""Vetline's policy screening engine: pure Python, no Django, no ORM.

Typical use::

    from vetline.policy.engine import compile_policy, load_pack, Scope

    policy = load_pack("general_brand_safety")          # or compile_policy(spec_dict_or_yaml)
    result = policy.screen("Our new spring collection!", Scope.OUTBOUND_POST)
    result.verdict_label, [(h.rule_id, h.start, h.end) for h in result.hits]

A compiled policy is immutable: compile once per policy version, then screen many texts.
"""

from __future__ import annotations

from .core import Hit, PolicyError, Scope, ScreeningResult, Severity
from .normalize import TextView, deobfuscate, fold
from .policy import PACKS, CompiledPolicy, compile_policy, load_pack, load_policy_yaml, pack_path
from .safe_regex import UnsafePatternError

__all__ = [
    "PACKS",
    "CompiledPolicy",
    "Hit",
    "PolicyError",
    "Scope",
    "ScreeningResult",
    "Severity",
    "TextView",
    "UnsafePatternError",
    "compile_policy",
    "deobfuscate",
    "fold",
    "load_pack",
    "load_policy_yaml",
    "pack_path",
]
