"""Simulated customers: they reply to the sandbox timelines, write direct messages, and now and
then edit or delete what they wrote, so that trainees and the demo have something to answer and
capture has something to capture."""

from __future__ import annotations

import random

from vetline.connectors.sandbox import network
from vetline.connectors.sandbox.models import PostKind, SandboxAccount, SandboxPost

CUSTOMERS: tuple[tuple[str, str], ...] = (
    ("casey.customer", "Casey Customer"),
    ("morgan.investor", "Morgan (retail investor)"),
    ("sam.skeptic", "Sam the Skeptic"),
)

REPLIES: tuple[str, ...] = (
    "Is this offer available in my state?",
    "What are the fees on this?",
    "Can you guarantee I won't lose money?",
    "Thanks, this was helpful!",
    "I've been waiting three days for a callback about my account.",
    "Which fund would you recommend for my retirement?",
)

DIRECT_MESSAGES: tuple[str, ...] = (
    "Hi, can you check my account balance? My number is on file.",
    "Could someone call me about rolling over my 401(k)?",
    "I'd like to complain about a trade that was executed late.",
)


def simulate(*, rng: random.Random | None = None, actions: int = 3) -> int:
    """Make up to ``actions`` customer moves across our sandbox timelines. Returns how many."""
    rng = rng or random.Random()
    timelines = list(SandboxAccount.objects.filter(is_customer=False))
    if not timelines:
        return 0
    customers = [
        network.ensure_account(handle, display_name=name, customer=True)
        for handle, name in CUSTOMERS
    ]
    done = 0
    for _ in range(actions):
        timeline = rng.choice(timelines)
        customer = rng.choice(customers)
        roll = rng.random()
        own_posts = list(
            SandboxPost.objects.filter(
                timeline=timeline, author=timeline, deleted_at__isnull=True
            ).order_by("-id")[:10]
        )
        if roll < 0.55 and own_posts:
            network.create_post(
                timeline=timeline,
                author=customer,
                text=rng.choice(REPLIES),
                kind=PostKind.REPLY,
                in_reply_to=rng.choice(own_posts),
            )
        elif roll < 0.85:
            network.create_post(
                timeline=timeline,
                author=customer,
                text=rng.choice(DIRECT_MESSAGES),
                kind=PostKind.DIRECT_MESSAGE,
            )
        else:
            theirs = list(
                SandboxPost.objects.filter(
                    timeline=timeline, author=customer, deleted_at__isnull=True
                ).order_by("-id")[:5]
            )
            if not theirs:
                continue
            post = rng.choice(theirs)
            if rng.random() < 0.5:
                network.edit_post(post=post, text=post.text + " (edited)")
            else:
                network.delete_post(post=post)
        done += 1
    return done
