"""Template tags other pages use to show publishing facts (the account page's rogue posts)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("publishing/_account_rogue.html", takes_context=True)
def account_rogue_posts(context: Any, account: Any) -> dict[str, Any]:
    """The open rogue posts of an account, for people who may see them (its owner and
    compliance)."""
    from vetline.publishing.selectors import visible_rogue_posts

    user = context.get("user")
    if user is None or not user.is_authenticated or account.kind != "corporate":
        return {"rogue": [], "account": account}
    rows = list(visible_rogue_posts(user).filter(account=account, status="open")[:20])
    return {"rogue": rows, "account": account}
