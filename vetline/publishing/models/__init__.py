"""Publishing: the approval engine, drafts, publications, freezes, rogue posts."""

from vetline.publishing.models.approvals import (
    AccountGroup,
    Approval,
    ApprovalChain,
    ApprovalDecider,
    ApprovalRequest,
    ApprovalStep,
    Decision,
    Delegation,
    RequestStep,
    SubjectKind,
)
from vetline.publishing.models.drafts import (
    Draft,
    DraftKind,
    DraftMedia,
    DraftRevision,
    RevisionTarget,
    Verdict,
)
from vetline.publishing.models.publications import (
    Freeze,
    HeldItem,
    HeldResolution,
    Notification,
    Publication,
    RogueCursor,
    RoguePost,
    RogueStatus,
)

__all__ = [
    "AccountGroup",
    "Approval",
    "ApprovalChain",
    "ApprovalDecider",
    "ApprovalRequest",
    "ApprovalStep",
    "Decision",
    "Delegation",
    "Draft",
    "DraftKind",
    "DraftMedia",
    "DraftRevision",
    "Freeze",
    "HeldItem",
    "HeldResolution",
    "Notification",
    "Publication",
    "RequestStep",
    "RevisionTarget",
    "RogueCursor",
    "RoguePost",
    "RogueStatus",
    "SubjectKind",
    "Verdict",
]
