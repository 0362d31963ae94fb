"""The approval engine: one workflow for everything that needs a line of authority.

A *subject* (a draft revision, a profile proposal revision…) is submitted with
:func:`open_request`. Its chain is resolved from the accounts involved (the account's own chain,
else a group's, else the default for the subject kind, else the built-in default), copied onto
the request as :class:`RequestStep` rows, and approvers decide step by step with
:func:`decide`. The request is pinned to the subject's SHA-256: :func:`decide` refuses a
decision made on other content, and a new revision supersedes the open request of the previous
one (:func:`open_request` does that, or call :func:`supersede_requests` on edit).

Subject modules plug in with :func:`register_subject`: a :class:`SubjectHandler` tells the
engine the subject's current hash, who may decide beyond the step's rule (object scoping), and
is called back *inside the deciding transaction* on approval, rejection, withdrawal, supersession
and expiry. :data:`request_closed` is also sent after the commit for loosely coupled listeners.

Four-eyes is enforced here and by database constraints on :class:`Approval`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.dispatch import Signal
from django.utils import timezone

from vetline.audit.actions import record
from vetline.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from vetline.identity.models import Person, RoleGrant
from vetline.identity.permissions import require, require_any
from vetline.identity.roles import Perm, Role
from vetline.publishing.models import (
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
from vetline.publishing.notifications import notify
from vetline.publishing.rules import four_eyes_violation
from vetline.publishing.states import IllegalTransition, RequestState, check_request

if TYPE_CHECKING:
    from vetline.accounts.models import SocialAccount

logger = logging.getLogger(__name__)

#: Sent after the commit when a request is approved, rejected, withdrawn, superseded or
#: expired, with ``request_id``, ``subject_type``, ``subject_id`` and ``state``.
request_closed = Signal()

# --- Subjects ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What is submitted for approval. ``type`` names a registered handler; ``group`` ties the
    revisions of one subject together (e.g. ``"draft:12"``)."""

    type: str
    id: int
    group: str
    sha256: str
    kind: SubjectKind
    title: str
    author: Person
    accounts: Sequence[SocialAccount] = ()


class SubjectHandler(Protocol):
    """What a subject module provides to the engine. Callbacks run inside the transaction
    that changes the request, with the request row locked: update the subject there."""

    def current_sha256(self, subject_id: int) -> str | None:
        """The subject revision's content hash now (None: it no longer exists)."""
        ...

    def may_decide(self, person: Person, request: ApprovalRequest, step: RequestStep) -> bool:
        """Object scoping beyond the step's rule (e.g. assigned approvers of the account)."""
        ...

    def url(self, request: ApprovalRequest) -> str: ...

    def on_closed(self, request: ApprovalRequest, *, actor: Person | None, comment: str) -> None:
        """The request reached ``request.state`` (approved, rejected, withdrawn, superseded or
        expired)."""
        ...


_HANDLERS: dict[str, SubjectHandler] = {}


def register_subject(subject_type: str, handler: SubjectHandler) -> None:
    """Plug a subject module in (call from its AppConfig.ready or at import)."""
    _HANDLERS[subject_type] = handler


def handler_for(subject_type: str) -> SubjectHandler:
    try:
        return _HANDLERS[subject_type]
    except KeyError:
        raise ValidationFailed(f"Nothing handles approvals of {subject_type!r}.") from None


# --- Chains ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSpec:
    name: str
    required_approvals: int = 1
    role: str = ""
    approver_ids: tuple[int, ...] = ()
    added_by_screening: bool = False


@dataclass(frozen=True)
class ChainPlan:
    """The steps a subject must pass, as resolved from its accounts' chains."""

    steps: tuple[StepSpec, ...]
    approval_valid_hours: int
    requires_approval: bool = True
    chain_ids: tuple[int, ...] = field(default=())


DEFAULT_STEPS: dict[str, tuple[StepSpec, ...]] = {
    SubjectKind.POST: (StepSpec("Principal approval", 1, role=Role.APPROVER.value),),
    SubjectKind.REPLY: (StepSpec("Principal approval", 1, role=Role.APPROVER.value),),
    SubjectKind.PROFILE: (StepSpec("Compliance approval", 1, role=Role.COMPLIANCE_OFFICER.value),),
}
DEFAULT_VALID_HOURS = 72
COMPLIANCE_STEP = StepSpec(
    "Compliance review (screening escalated)",
    1,
    role=Role.COMPLIANCE_OFFICER.value,
    added_by_screening=True,
)


def _chain_for_account(kind: str, account: SocialAccount) -> ApprovalChain | None:
    active = ApprovalChain.objects.filter(subject_kind=kind, is_active=True)
    own = active.filter(account=account).first()
    if own is not None:
        return own
    group = active.filter(group__accounts=account).order_by("group__name").first()
    if group is not None:
        return group
    return active.filter(account__isnull=True, group__isnull=True).first()


def _specs(chain: ApprovalChain) -> list[StepSpec]:
    return [
        StepSpec(
            name=s.name,
            required_approvals=s.required_approvals,
            role=s.role,
            approver_ids=tuple(sorted(s.approvers.values_list("pk", flat=True))),
        )
        for s in chain.steps.order_by("position")
    ]


def resolve_chain(*, kind: SubjectKind | str, accounts: Sequence[SocialAccount]) -> ChainPlan:
    """The chain a subject of ``kind`` for ``accounts`` goes through. With several accounts,
    the steps of each distinct chain are required (in order, without repeating a chain), the
    shortest validity applies, and approval is skipped only if every chain skips it."""
    kind = SubjectKind(kind)
    chains: list[ApprovalChain] = []
    use_default = not accounts
    for account in accounts:
        chain = _chain_for_account(kind, account)
        if chain is None:
            use_default = True
        elif chain.pk not in {c.pk for c in chains}:
            chains.append(chain)
    steps: list[StepSpec] = []
    hours: list[int] = []
    requires = use_default
    for chain in chains:
        hours.append(chain.approval_valid_hours)
        if chain.requires_approval:
            requires = True
            chain_steps = _specs(chain)
            steps.extend(chain_steps or DEFAULT_STEPS[kind])
    if use_default:
        steps.extend(DEFAULT_STEPS[kind])
        hours.append(DEFAULT_VALID_HOURS)
    return ChainPlan(
        steps=tuple(steps),
        approval_valid_hours=min(hours) if hours else DEFAULT_VALID_HOURS,
        requires_approval=requires,
        chain_ids=tuple(c.pk for c in chains),
    )


# --- Requests ----------------------------------------------------------------------------------


def _snapshot(req: ApprovalRequest) -> dict[str, Any]:
    return {
        "state": req.state,
        "current_position": req.current_position,
        "subject": f"{req.subject_type}:{req.subject_id}",
        "subject_sha256": req.subject_sha256,
        "expires_at": req.expires_at,
    }


def _transition(
    req: ApprovalRequest,
    target: RequestState,
    *,
    actor: Person | None,
    comment: str = "",
    action: str,
) -> None:
    """Move a locked request to ``target``, audit, call the subject back, and signal after
    the commit. Call inside a transaction with the request row locked."""
    try:
        check_request(req.state, target)
    except IllegalTransition as exc:
        raise Conflict(
            f"This approval request is {req.request_state.label.lower()}; it cannot become "
            f"{target.label.lower()}."
        ) from exc
    before = _snapshot(req)
    now = timezone.now()
    req.state = target.value
    if target in (RequestState.APPROVED, RequestState.REJECTED):
        req.decided_at = now
    if target == RequestState.APPROVED:
        req.expires_at = now + dt.timedelta(hours=req.approval_valid_hours)
    if target != RequestState.APPROVED:
        req.closed_reason = comment[:1000]
    req.save()
    record(
        action=action,
        actor=actor,
        actor_name="" if actor else "approvals",
        obj=req,
        before=before,
        after={**_snapshot(req), "comment": comment[:1000]},
    )
    handler_for(req.subject_type).on_closed(req, actor=actor, comment=comment)
    payload = {
        "request_id": req.pk,
        "subject_type": req.subject_type,
        "subject_id": req.subject_id,
        "state": req.state,
    }
    transaction.on_commit(lambda: request_closed.send(sender=ApprovalRequest, **payload))


def supersede_requests(*, subject_type: str, group: str, reason: str, actor: Person | None) -> int:
    """Close every open request of this subject family because its content changed (the chain
    starts again on the new revision). Call inside the transaction of the edit."""
    count = 0
    for req in ApprovalRequest.objects.select_for_update().filter(
        subject_type=subject_type,
        subject_group=group,
        state__in=[RequestState.PENDING.value, RequestState.APPROVED.value],
    ):
        _transition(
            req,
            RequestState.SUPERSEDED,
            actor=actor,
            comment=reason,
            action="publishing.approval.supersede",
        )
        count += 1
    return count


def open_request(
    *,
    actor: Person,
    subject: Subject,
    escalate: bool = False,
    notes_for_approvers: str = "",
) -> ApprovalRequest:
    """Submit a subject revision for approval through its chain (plus a compliance step when
    ``escalate``). Supersedes any open request of earlier revisions of the same subject. The
    caller has checked that ``actor`` may submit the subject. Call inside a transaction (the
    subject's own), or on its own."""
    handler = handler_for(subject.type)
    if handler.current_sha256(subject.id) != subject.sha256:
        raise Conflict("The content changed while it was being submitted; submit it again.")
    plan = resolve_chain(kind=subject.kind, accounts=subject.accounts)
    steps = list(plan.steps)
    if escalate:
        steps.append(COMPLIANCE_STEP)
    if not steps:
        raise ValidationFailed("No approval step applies to this item.")
    with transaction.atomic():
        supersede_requests(
            subject_type=subject.type,
            group=subject.group,
            reason="a new revision was submitted",
            actor=actor,
        )
        try:
            with transaction.atomic():
                req = ApprovalRequest.objects.create(
                    subject_kind=subject.kind.value,
                    subject_type=subject.type,
                    subject_id=subject.id,
                    subject_group=subject.group[:100],
                    subject_sha256=subject.sha256,
                    title=subject.title[:300],
                    author=subject.author,
                    approval_valid_hours=plan.approval_valid_hours,
                    notes_for_approvers=notes_for_approvers,
                )
        except IntegrityError as exc:
            raise Conflict("This revision is already waiting for approval.") from exc
        req.accounts.set(list(subject.accounts))
        RequestStep.objects.bulk_create(
            [
                RequestStep(
                    request=req,
                    position=i,
                    name=s.name[:120],
                    role=s.role,
                    approver_ids=list(s.approver_ids),
                    required_approvals=s.required_approvals,
                    added_by_screening=s.added_by_screening,
                )
                for i, s in enumerate(steps, start=1)
            ]
        )
        record(
            action="publishing.approval.open",
            actor=actor,
            obj=req,
            after={
                **_snapshot(req),
                "steps": [
                    {
                        "name": s.name,
                        "role": s.role,
                        "people": list(s.approver_ids),
                        "required": s.required_approvals,
                        "screening": s.added_by_screening,
                    }
                    for s in steps
                ],
                "chains": list(plan.chain_ids),
                "escalated": escalate,
            },
        )
        _notify_step(req)
    return req


def current_step(req: ApprovalRequest) -> RequestStep | None:
    return req.steps.filter(position=req.current_position).first()


def _active_delegations(delegate: Person, now: dt.datetime) -> QuerySet[Delegation]:
    return Delegation.objects.filter(
        delegate=delegate, revoked_at__isnull=True, starts_at__lte=now, ends_at__gt=now
    ).select_related("delegator")


def _step_rule_allows(person: Person, step: RequestStep) -> bool:
    if not person.is_active:
        return False
    if step.approver_ids:
        return person.pk in step.approver_ids
    if step.role:
        return Role(step.role) in person.roles
    return False


def acting_capacities(
    person: Person, req: ApprovalRequest, step: RequestStep, *, now: dt.datetime | None = None
) -> list[Person | None]:
    """In which capacities ``person`` may decide on ``step``: None for in their own right, or
    the absent approver they stand in for. Empty: they may not decide. Four-eyes applies."""
    now = now or timezone.now()
    handler = handler_for(req.subject_type)
    prior = list(req.approvals.values_list("approver_id", "on_behalf_of_id"))
    out: list[Person | None] = []
    if (
        _step_rule_allows(person, step)
        and handler.may_decide(person, req, step)
        and four_eyes_violation(
            author_id=req.author_id, acting_id=person.pk, on_behalf_of_id=None, prior=prior
        )
        is None
    ):
        out.append(None)
    for delegation in _active_delegations(person, now):
        absent = delegation.delegator
        if (
            _step_rule_allows(absent, step)
            and handler.may_decide(absent, req, step)
            and four_eyes_violation(
                author_id=req.author_id,
                acting_id=person.pk,
                on_behalf_of_id=absent.pk,
                prior=prior,
            )
            is None
        ):
            out.append(absent)
    return out


def may_decide(person: Person, req: ApprovalRequest) -> bool:
    if req.state != RequestState.PENDING:
        return False
    step = current_step(req)
    return step is not None and bool(acting_capacities(person, req, step))


def decide(
    *,
    actor: Person,
    request_id: int,
    decision: Decision | str,
    comment: str = "",
    subject_sha256: str,
    on_behalf_of_id: int | None = None,
    step_position: int | None = None,
) -> ApprovalRequest:
    """Approve or reject the current step of a request, pinned to ``subject_sha256`` (the hash
    of the content the approver saw). A rejection needs a comment and returns the subject to
    its author. When the last step completes, the request is approved. ``step_position`` (the
    step the approver saw) guards against a decision landing on a later step after a
    concurrent one completed the step. Raises NotFound when the actor may not see the request,
    Forbidden when they may not decide now."""
    decision = Decision(decision)
    comment = (comment or "").strip()
    if decision == Decision.REJECT and not comment:
        raise ValidationFailed("Say why it is rejected: the author needs to know.", field="comment")
    if len(comment) > 5000:
        raise ValidationFailed("The comment is too long (at most 5,000 characters).")
    with transaction.atomic():
        req = ApprovalRequest.objects.select_for_update().filter(pk=request_id).first()
        if req is None or not can_view_request(actor, req):
            raise NotFound("No such approval request.")
        if req.state != RequestState.PENDING:
            raise Conflict(f"This request is {req.request_state.label.lower()}: nothing to decide.")
        handler = handler_for(req.subject_type)
        if (
            subject_sha256 != req.subject_sha256
            or handler.current_sha256(req.subject_id) != req.subject_sha256
        ):
            raise Conflict(
                "The content changed since you opened it; review the current revision.",
                code="stale_revision",
            )
        step = current_step(req)
        if step is None:  # pragma: no cover - a pending request always has a current step
            raise Conflict("This request has no step left to decide.")
        if step_position is not None and step_position != step.position:
            raise Conflict(
                f"Step {step_position} was completed meanwhile; the request is now at step "
                f"{step.position} (“{step.name}”). Review it again.",
                code="step_moved",
            )
        capacities = acting_capacities(actor, req, step)
        prior = list(req.approvals.values_list("approver_id", "on_behalf_of_id"))
        if not capacities:
            why = four_eyes_violation(
                author_id=req.author_id, acting_id=actor.pk, on_behalf_of_id=None, prior=prior
            )
            raise Forbidden(why or f"You may not decide on the step “{step.name}”.")
        if on_behalf_of_id is not None:
            chosen = next((c for c in capacities if c and c.pk == on_behalf_of_id), None)
            if chosen is None:
                raise Forbidden("You do not stand in for that approver on this step.")
            behalf: Person | None = chosen
        else:
            behalf = capacities[0]
        try:
            with transaction.atomic():
                approval = Approval.objects.create(
                    request=req,
                    step=step,
                    approver=actor,
                    on_behalf_of=behalf,
                    author_id=req.author_id,
                    decision=decision.value,
                    comment=comment,
                    subject_sha256=req.subject_sha256,
                )
                ApprovalDecider.objects.bulk_create(
                    [
                        ApprovalDecider(request=req, approval=approval, person_id=person_id)
                        for person_id in {actor.pk, behalf.pk if behalf else actor.pk}
                    ]
                )
        except IntegrityError as exc:
            raise Forbidden("One person approves at most one step of the same revision.") from exc
        record(
            action=f"publishing.approval.{decision.value}",
            actor=actor,
            obj=req,
            after={
                "step": step.position,
                "step_name": step.name,
                "on_behalf_of": behalf.pk if behalf else None,
                "comment": comment,
                "subject_sha256": req.subject_sha256,
                "approval_id": approval.pk,
            },
        )
        url = handler.url(req)
        if decision == Decision.REJECT:
            _transition(
                req,
                RequestState.REJECTED,
                actor=actor,
                comment=comment,
                action="publishing.approval.rejected",
            )
            notify(
                people=[req.author],
                title=f"Rejected: {req.title}",
                body=f"{actor} rejected it at “{step.name}”: {comment}",
                url=url,
            )
            return req
        approvals = step.approvals.filter(decision=Decision.APPROVE.value).count()
        if approvals < step.required_approvals:
            return req
        step.completed_at = timezone.now()
        step.save(update_fields=["completed_at"])
        if req.steps.filter(position__gt=step.position).exists():
            before = _snapshot(req)
            req.current_position = step.position + 1
            req.save(update_fields=["current_position"])
            record(
                action="publishing.approval.advance",
                actor=actor,
                obj=req,
                before=before,
                after=_snapshot(req),
            )
            _notify_step(req)
            return req
        _transition(
            req,
            RequestState.APPROVED,
            actor=actor,
            comment=comment,
            action="publishing.approval.approved",
        )
        notify(people=[req.author], title=f"Approved: {req.title}", url=url)
    return req


def withdraw_request(*, actor: Person, request_id: int, reason: str = "") -> ApprovalRequest:
    """The author withdraws their request (pending or approved)."""
    with transaction.atomic():
        req = ApprovalRequest.objects.select_for_update().filter(pk=request_id).first()
        if req is None or not can_view_request(actor, req):
            raise NotFound("No such approval request.")
        if req.author_id != actor.pk:
            raise Forbidden("Only the author withdraws a request.")
        _transition(
            req,
            RequestState.WITHDRAWN,
            actor=actor,
            comment=reason or "withdrawn by the author",
            action="publishing.approval.withdraw",
        )
    return req


def expire_approvals(*, now: dt.datetime | None = None) -> int:
    """Approved requests past their validity become expired (system). A stale approval can
    never publish: publishing checks :func:`approval_is_valid` at send time too."""
    now = now or timezone.now()
    ids = list(
        ApprovalRequest.objects.filter(
            state=RequestState.APPROVED.value, expires_at__lte=now
        ).values_list("pk", flat=True)
    )
    expired = 0
    for pk in ids:
        with transaction.atomic():
            req = ApprovalRequest.objects.select_for_update().get(pk=pk)
            if req.state != RequestState.APPROVED or req.expires_at is None or req.expires_at > now:
                continue
            _transition(
                req,
                RequestState.EXPIRED,
                actor=None,
                comment="the approval expired",
                action="publishing.approval.expire",
            )
            notify(
                people=[req.author],
                title=f"Approval expired: {req.title}",
                body="Submit it again to publish it.",
                url=handler_for(req.subject_type).url(req),
            )
            expired += 1
    return expired


def approval_is_valid(
    req: ApprovalRequest | None, *, sha256: str, now: dt.datetime | None = None
) -> bool:
    """True when ``req`` approves exactly the content ``sha256`` and has not expired."""
    if req is None:
        return False
    now = now or timezone.now()
    return (
        req.state == RequestState.APPROVED
        and req.subject_sha256 == sha256
        and req.expires_at is not None
        and req.expires_at > now
    )


# --- Reads -------------------------------------------------------------------------------------


def can_view_request(person: Person, req: ApprovalRequest) -> bool:
    """Authors, anyone who decided or may decide on it, and compliance see a request."""
    if not person.is_authenticated or not person.is_active:
        return False
    if req.author_id == person.pk or person.can(Perm.APPROVAL_CHAINS_MANAGE):
        return True
    if req.approvals.filter(Q(approver=person) | Q(on_behalf_of=person)).exists():
        return True
    handler = handler_for(req.subject_type)
    for step in req.steps.all():
        if _step_rule_allows(person, step) and handler.may_decide(person, req, step):
            return True
        for delegation in _active_delegations(person, timezone.now()):
            if _step_rule_allows(delegation.delegator, step) and handler.may_decide(
                delegation.delegator, req, step
            ):
                return True
    return False


def get_request(person: Person, request_id: int) -> ApprovalRequest:
    req = ApprovalRequest.objects.filter(pk=request_id).select_related("author").first()
    if req is None or not can_view_request(person, req):
        raise NotFound("No such approval request.")
    return req


def inbox(person: Person, *, subject_types: Sequence[str] | None = None) -> list[ApprovalRequest]:
    """Pending requests whose current step ``person`` may decide now (in their own right or
    for someone they stand in for), oldest first."""
    if not person.is_authenticated or not person.is_active:
        return []
    roles = {r.value for r in person.roles}
    now = timezone.now()
    delegators = [d.delegator for d in _active_delegations(person, now)]
    for d in delegators:
        roles |= {r.value for r in d.roles}
    ids = {person.pk} | {d.pk for d in delegators}
    qs = ApprovalRequest.objects.filter(state=RequestState.PENDING.value).exclude(author=person)
    if subject_types:
        qs = qs.filter(subject_type__in=list(subject_types))
    out = []
    for req in qs.select_related("author").order_by("created_at")[:500]:
        step = current_step(req)
        if step is None:
            continue
        if step.approver_ids and not ids & set(step.approver_ids):
            continue
        if not step.approver_ids and step.role not in roles:
            continue
        if acting_capacities(person, req, step, now=now):
            out.append(req)
    return out


# --- Chain and delegation administration --------------------------------------------------------


@dataclass(frozen=True)
class StepInput:
    name: str
    required_approvals: int = 1
    role: str = ""
    approver_ids: tuple[int, ...] = ()


def _chain_snapshot(chain: ApprovalChain) -> dict[str, Any]:
    return {
        "name": chain.name,
        "subject_kind": chain.subject_kind,
        "account_id": chain.account_id,
        "group_id": chain.group_id,
        "requires_approval": chain.requires_approval,
        "approval_valid_hours": chain.approval_valid_hours,
        "is_active": chain.is_active,
        "steps": [
            {
                "position": s.position,
                "name": s.name,
                "role": s.role,
                "people": sorted(s.approvers.values_list("pk", flat=True)),
                "required": s.required_approvals,
            }
            for s in chain.steps.order_by("position")
        ]
        if chain.pk
        else [],
    }


def _check_steps(steps: Sequence[StepInput], requires_approval: bool) -> list[list[Person]]:
    if requires_approval and not steps:
        raise ValidationFailed("A chain needs at least one step.", field="steps")
    if len(steps) > 10:
        raise ValidationFailed("At most 10 steps.", field="steps")
    people: list[list[Person]] = []
    for i, s in enumerate(steps, start=1):
        if not s.name.strip() or len(s.name) > 120:
            raise ValidationFailed(f"Step {i} needs a name (at most 120 characters).")
        if bool(s.role) == bool(s.approver_ids):
            raise ValidationFailed(f"Step {i}: name a role or named people, not both or neither.")
        if s.role and s.role not in {r.value for r in Role}:
            raise ValidationFailed(f"Step {i}: {s.role!r} is not a role.")
        if not 1 <= s.required_approvals <= 20:
            raise ValidationFailed(f"Step {i}: between 1 and 20 approvals.")
        named = list(Person.objects.filter(pk__in=s.approver_ids, is_active=True))
        if len(named) != len(set(s.approver_ids)):
            raise ValidationFailed(f"Step {i}: an approver named is unknown or inactive.")
        if named and len(named) < s.required_approvals:
            raise ValidationFailed(
                f"Step {i} needs {s.required_approvals} approvals but names {len(named)} people."
            )
        if s.role and s.required_approvals > 1:
            holders = RoleGrant.objects.filter(role=s.role, person__is_active=True).count()
            if holders < s.required_approvals:
                raise ValidationFailed(
                    f"Step {i} needs {s.required_approvals} approvals but only {holders} "
                    f"people hold that role."
                )
        people.append(named)
    return people


def save_chain(
    *,
    actor: Person,
    name: str,
    subject_kind: SubjectKind | str,
    steps: Sequence[StepInput],
    account: SocialAccount | None = None,
    group: AccountGroup | None = None,
    requires_approval: bool = True,
    approval_valid_hours: int = DEFAULT_VALID_HOURS,
) -> ApprovalChain:
    """Configure the chain of an account, a group or the organisation default (neither),
    replacing the active one for the same scope. Requests already under way keep their steps."""
    require(actor, Perm.APPROVAL_CHAINS_MANAGE)
    try:
        kind = SubjectKind(subject_kind)
    except ValueError:
        raise ValidationFailed("Unknown subject kind.", field="subject_kind") from None
    if account is not None and group is not None:
        raise ValidationFailed("A chain applies to an account or to a group, not both.")
    if not requires_approval and kind != SubjectKind.REPLY:
        raise ValidationFailed("Only replies to customers may skip approval.")
    if not 1 <= approval_valid_hours <= 24 * 90:
        raise ValidationFailed("Approvals stay valid between 1 hour and 90 days.")
    if not name.strip() or len(name) > 120:
        raise ValidationFailed("The chain needs a name (at most 120 characters).", field="name")
    people = _check_steps(steps, requires_approval)
    with transaction.atomic():
        old = (
            ApprovalChain.objects.select_for_update()
            .filter(subject_kind=kind.value, account=account, group=group, is_active=True)
            .first()
        )
        before = None
        if old is not None:
            before = _chain_snapshot(old)
            old.is_active = False
            old.save(update_fields=["is_active"])
        chain = ApprovalChain.objects.create(
            name=name.strip(),
            subject_kind=kind.value,
            account=account,
            group=group,
            requires_approval=requires_approval,
            approval_valid_hours=approval_valid_hours,
            created_by=actor,
        )
        for i, (s, named) in enumerate(zip(steps, people, strict=True), start=1):
            step = ApprovalStep.objects.create(
                chain=chain,
                position=i,
                name=s.name.strip(),
                role=s.role,
                required_approvals=s.required_approvals,
            )
            step.approvers.set(named)
        record(
            action="publishing.chain.save",
            actor=actor,
            obj=chain,
            before=before,
            after=_chain_snapshot(chain),
        )
    return chain


def deactivate_chain(*, actor: Person, chain_id: int) -> ApprovalChain:
    require(actor, Perm.APPROVAL_CHAINS_MANAGE)
    with transaction.atomic():
        chain = ApprovalChain.objects.select_for_update().filter(pk=chain_id).first()
        if chain is None:
            raise NotFound("No such chain.")
        if chain.is_active:
            chain.is_active = False
            chain.save(update_fields=["is_active"])
            record(action="publishing.chain.deactivate", actor=actor, obj=chain)
    return chain


def save_group(
    *, actor: Person, name: str, accounts: Sequence[SocialAccount], group_id: int | None = None
) -> AccountGroup:
    require(actor, Perm.APPROVAL_CHAINS_MANAGE)
    if not name.strip() or len(name) > 120:
        raise ValidationFailed("The group needs a name (at most 120 characters).", field="name")
    with transaction.atomic():
        if group_id is None:
            if AccountGroup.objects.filter(name=name.strip()).exists():
                raise Conflict("A group of that name exists.")
            group = AccountGroup.objects.create(name=name.strip())
            before = None
        else:
            found = AccountGroup.objects.select_for_update().filter(pk=group_id).first()
            if found is None:
                raise NotFound("No such group.")
            group = found
            before = {"name": group.name, "accounts": sorted(a.pk for a in group.accounts.all())}
            group.name = name.strip()
            group.save(update_fields=["name"])
        group.accounts.set(list(accounts))
        record(
            action="publishing.group.save",
            actor=actor,
            obj=group,
            before=before,
            after={"name": group.name, "accounts": sorted(a.pk for a in accounts)},
        )
    return group


def create_delegation(
    *,
    actor: Person,
    delegator: Person,
    delegate: Person,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    reason: str,
) -> Delegation:
    """Cover ``delegator``'s absence by ``delegate``. Approvers delegate their own absence;
    chain managers (compliance, administrators) may set it up for anyone."""
    if actor.pk != delegator.pk:
        require(actor, Perm.APPROVAL_CHAINS_MANAGE)
    else:
        require_any(actor, Perm.APPROVE, Perm.PROFILES_VET, Perm.APPROVAL_CHAINS_MANAGE)
    if delegator.pk == delegate.pk:
        raise ValidationFailed("Nobody delegates to themselves.", field="delegate")
    if not delegate.is_active:
        raise ValidationFailed("The delegate is not active.", field="delegate")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValidationFailed("Give times with a time zone.")
    if ends_at <= starts_at:
        raise ValidationFailed("The delegation must end after it starts.", field="ends_at")
    if ends_at - starts_at > dt.timedelta(days=180):
        raise ValidationFailed("A delegation lasts at most 180 days.", field="ends_at")
    if ends_at <= timezone.now():
        raise ValidationFailed("The delegation would already be over.", field="ends_at")
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise ValidationFailed("Give a reason (at most 500 characters).", field="reason")
    with transaction.atomic():
        delegation = Delegation.objects.create(
            delegator=delegator,
            delegate=delegate,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            created_by=actor,
        )
        record(
            action="publishing.delegation.create",
            actor=actor,
            obj=delegation,
            after={
                "delegator": delegator.pk,
                "delegate": delegate.pk,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "reason": reason,
            },
        )
        notify(
            people=[delegate],
            title=f"You stand in for {delegator} as approver",
            body=f"From {starts_at:%Y-%m-%d %H:%M} to {ends_at:%Y-%m-%d %H:%M} UTC: {reason}",
        )
    return delegation


def revoke_delegation(*, actor: Person, delegation_id: int) -> Delegation:
    with transaction.atomic():
        delegation = Delegation.objects.select_for_update().filter(pk=delegation_id).first()
        if delegation is None or (
            actor.pk not in (delegation.delegator_id, delegation.created_by_id)
            and not actor.can(Perm.APPROVAL_CHAINS_MANAGE)
        ):
            raise NotFound("No such delegation.")
        if delegation.revoked_at is None:
            delegation.revoked_at = timezone.now()
            delegation.save(update_fields=["revoked_at"])
            record(action="publishing.delegation.revoke", actor=actor, obj=delegation)
    return delegation


# --- Notifications ------------------------------------------------------------------------------


def eligible_people(req: ApprovalRequest, step: RequestStep) -> list[Person]:
    """Who may decide on ``step`` now (for notifying them), delegates included."""
    handler = handler_for(req.subject_type)
    if step.approver_ids:
        base = list(Person.objects.filter(pk__in=step.approver_ids, is_active=True))
    elif step.role:
        base = list(
            Person.objects.filter(
                is_active=True, pk__in=RoleGrant.objects.filter(role=step.role).values("person_id")
            )
        )
    else:
        base = []
    now = timezone.now()
    out = {p.pk: p for p in base if p.pk != req.author_id and handler.may_decide(p, req, step)}
    for d in Delegation.objects.filter(
        delegator_id__in=[p.pk for p in base],
        revoked_at__isnull=True,
        starts_at__lte=now,
        ends_at__gt=now,
    ).select_related("delegate"):
        if d.delegate_id != req.author_id and d.delegate.is_active:
            out.setdefault(d.delegate_id, d.delegate)
    return list(out.values())


def _notify_step(req: ApprovalRequest) -> None:
    step = current_step(req)
    if step is None:
        return
    notify(
        people=eligible_people(req, step),
        title=f"Approval needed: {req.title}",
        body=f"Step {step.position}: {step.name}.",
        url=handler_for(req.subject_type).url(req),
    )
