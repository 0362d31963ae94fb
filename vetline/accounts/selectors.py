"""Reads of the account registry, always scoped to what the person may see."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from vetline.accounts.models import Assignment, Credential, SocialAccount
from vetline.core.errors import NotFound
from vetline.identity.models import Person
from vetline.identity.roles import Capability, Perm


def visible_accounts(person: Person) -> QuerySet[SocialAccount]:
    """Accounts a person may see: all of them for registry-wide roles; otherwise the accounts
    they are assigned to or own."""
    qs = SocialAccount.objects.all()
    if not person.is_authenticated or not person.is_active:
        return qs.none()
    if person.can(Perm.ACCOUNTS_VIEW_ALL):
        return qs
    return qs.filter(Q(assignments__person=person) | Q(owner=person)).distinct()


def get_visible_account(person: Person, account_id: int) -> SocialAccount:
    """The account, or NotFound if it does not exist *or* the person may not see it."""
    account = visible_accounts(person).filter(pk=account_id).select_related("owner").first()
    if account is None:
        raise NotFound("No such account.")
    return account


def can_act_on(person: Person, account: SocialAccount, capability: Capability) -> bool:
    """Object scoping: a Publisher or Approver acts only on accounts assigned to them."""
    if not person.is_active or not person.can(capability.required_permission):
        return False
    return Assignment.objects.filter(
        account=account, person=person, capability=capability.value
    ).exists()


def accounts_with_counts(person: Person) -> QuerySet[SocialAccount]:
    return (
        visible_accounts(person)
        .select_related("owner")
        .annotate(
            publisher_count=Count(
                "assignments",
                filter=Q(assignments__capability=Capability.PUBLISH.value),
                distinct=True,
            )
        )
    )


def active_credentials(account: SocialAccount) -> QuerySet[Credential]:
    return account.credentials.filter(revoked_at__isnull=True).select_related("set_by")
