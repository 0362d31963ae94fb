"""Page conversations through the Graph API (Messenger Platform for Facebook Pages, the
Instagram Messaging API for Instagram professional accounts: both are read as
``/{page-id}/conversations``, with ``platform=instagram`` for the latter).

Reading needs ``pages_messaging`` (Facebook) or ``instagram_manage_messages`` (Instagram) with
Advanced Access; a conversation lists its messages newest first.
"""

from __future__ import annotations

from typing import Any, Final

from vetline.connectors.facebook.graph import GraphAnswer, GraphClient, graph_time, next_page
from vetline.connectors.facebook.graph import epoch as iso_epoch
from vetline.connectors.facebook.graph import list_request as graph_list
from vetline.connectors.polling import SweepCursor, Task, TaskResult, item, unreadable

CONVERSATION_FIELDS: Final = "id,updated_time"
MESSAGE_FIELDS: Final = "id,created_time,from,to,message"


def page_data(
    answer: GraphAnswer, *, network: str, stream: str, result: TaskResult
) -> list[Any] | None:
    """The ``data`` list of a Graph list page. A page that is not a JSON list (truncated,
    an HTML error page, invalid JSON) is handed to the archive whole, to be quarantined."""
    data = answer.json()
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        result.items.append(
            answer.body
            if data is None
            else unreadable(data, network=network, stream=stream, reason="not a Graph list")
        )
        return None
    return list(data["data"])


def conversations(
    client: GraphClient,
    task: Task,
    state: SweepCursor,
    *,
    page_id: str,
    network: str,
    limit: int,
    platform: str = "",
) -> TaskResult:
    """One page of the Page's conversations; each one updated in the window is queued."""
    result = TaskResult()
    params: dict[str, Any] = {"fields": CONVERSATION_FIELDS, "limit": min(limit, 100)}
    if platform:
        params["platform"] = platform
    answer = graph_list(client, (page_id, "conversations"), params, task.page)
    rows = page_data(answer, network=network, stream="conversations", result=result)
    if rows is None:
        return result
    oldest = None
    for row in rows:
        updated = graph_time(row.get("updated_time")) if isinstance(row, dict) else None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or updated is None:
            result.items.append(
                unreadable(row, network=network, stream="conversations", reason="no id or time")
            )
            continue
        oldest = iso_epoch(updated)
        if oldest >= state.window_start:
            result.follow_ups.append(Task("messages", row["id"]))
    token = next_page(answer.json())
    if token and (oldest is None or oldest >= state.window_start):
        result.next_page = Task("conversations", "", token)
    return result


def messages(
    client: GraphClient,
    task: Task,
    state: SweepCursor,
    *,
    own_ids: set[str],
    network: str,
    limit: int,
) -> TaskResult:
    """One page of a conversation's messages (newest first) as ``direct_message`` items."""
    result = TaskResult()
    answer = graph_list(
        client,
        (task.target, "messages"),
        {"fields": MESSAGE_FIELDS, "limit": min(limit, 100)},
        task.page,
    )
    rows = page_data(answer, network=network, stream="messages", result=result)
    if rows is None:
        return result
    oldest = None
    for row in rows:
        at = graph_time(row.get("created_time")) if isinstance(row, dict) else None
        sender = row.get("from") if isinstance(row, dict) else None
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("id"), str)
            or at is None
            or not isinstance(sender, dict)
        ):
            result.items.append(
                unreadable(row, network=network, stream="messages", reason="no id, time or sender")
            )
            continue
        oldest = iso_epoch(at)
        recipients = row.get("to", {}).get("data", []) if isinstance(row.get("to"), dict) else []
        people = [sender, *(r for r in recipients if isinstance(r, dict))]
        handles = sorted({_handle(p) for p in people if _handle(p)})
        result.items.append(
            item(
                row,
                remote_id=row["id"],
                kind="direct_message",
                direction="outbound" if str(sender.get("id")) in own_ids else "inbound",
                author=_handle(sender),
                participants=handles,
                conversation_id=task.target,
                thread_id=task.target,
                text=row.get("message") if isinstance(row.get("message"), str) else "",
                network_timestamp=at,
            )
        )
    token = next_page(answer.json())
    if token and (oldest is None or oldest >= state.window_start):
        result.next_page = Task("messages", task.target, token)
    return result


def _handle(person: dict[str, Any]) -> str:
    """A participant: Instagram gives ``username``, Messenger ``name`` (and ``id``)."""
    for key in ("username", "name", "id"):
        value = person.get(key)
        if isinstance(value, str) and value:
            return value[:300]
    return ""
