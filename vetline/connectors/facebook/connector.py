"""Facebook Pages through the Graph API (pinned version, ``graph_api_version`` to change it).

Operator settings (``VETLINE_CONNECTORS["facebook"]``): ``app_id``, ``app_secret``, optionally
``graph_api_version``, ``rescan_days`` (the re-fetch window, default 7) and ``scopes``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any, Final

from vetline.connectors.base import (
    AccountRef,
    ActivityPage,
    Capabilities,
    MediaRef,
    PermanentError,
    Profile,
    PublishRequest,
    PublishResult,
    TokenSet,
    raw_item,
)
from vetline.connectors.facebook import messaging
from vetline.connectors.facebook.graph import (
    GraphClient,
    GraphConnector,
    ObjectGone,
    choose_for_account,
    entry_names,
    epoch,
    graph_object,
    graph_object_id,
    graph_time,
    list_request,
    next_page,
)
from vetline.connectors.media import with_media
from vetline.connectors.polling import (
    SweepCursor,
    Task,
    TaskResult,
    deletion,
    item,
    own_post,
    run_step,
    text_of,
    unreadable,
)

NETWORK: Final = "facebook"
PROFILE_FIELDS: Final = "id,name,username,about,description,link,website,category"
# Content fields only: counts, picture URLs (signed, they change) and updated_time (it moves
# when someone comments) would make every re-read look like a new version of the post.
POST_FIELDS: Final = "id,message,story,created_time,from{id,name},permalink_url,status_type"
COMMENT_FIELDS: Final = "id,message,created_time,from{id,name},parent{id},permalink_url"
TAGGED_FIELDS: Final = "id,message,created_time,from{id,name},permalink_url"
PAGE_FIELDS: Final = "id,name,username,access_token,tasks"
# Asked when a post's media are fetched (not with the post: the URLs are signed and change).
_ATTACHMENT: Final = "media_type,type,description,media"
ATTACHMENT_FIELDS: Final = f"attachments{{{_ATTACHMENT},subattachments{{{_ATTACHMENT}}}}}"
#: attachment media types that are the post's own media (not a link preview or an event)
MEDIA_TYPES: Final = frozenset({"photo", "video", "animated_image_video", "animated_image_share"})


def attachment_media(post: Any) -> list[MediaRef]:
    """The media of a post from its ``attachments`` (StoryAttachment): a photo's
    ``media.image.src``, a video's ``media.source``; an album's photos are its
    ``subattachments``. ``description`` is the caption people gave the medium."""
    found: list[MediaRef] = []
    attachments = _mapping(post).get("attachments")
    for attachment in _data(attachments):
        subs = _data(_mapping(attachment).get("subattachments"))
        for entry in subs or [attachment]:
            entry = _mapping(entry)
            if entry.get("media_type") not in MEDIA_TYPES:
                continue
            media = _mapping(entry.get("media"))
            url = media.get("source") or _mapping(media.get("image")).get("src")
            if isinstance(url, str) and url and url not in {f.ref for f in found}:
                alt = entry.get("description")
                found.append(MediaRef(ref=url, alt_text=alt if isinstance(alt, str) else ""))
    return found


def _data(value: Any) -> list[Any]:
    data = _mapping(value).get("data")
    return data if isinstance(data, list) else []


class FacebookPagesConnector(GraphConnector):
    network = NETWORK
    label = "Facebook Pages"
    default_scopes = (
        "pages_show_list",
        "pages_read_engagement",
        "pages_read_user_content",
        "pages_manage_posts",
        "pages_manage_engagement",
        "pages_messaging",
    )
    scope_requirements = {
        "publish_post": ("pages_manage_posts",),
        "publish_reply": ("pages_manage_engagement",),
        "publish_media": ("pages_manage_posts",),
        "delete": ("pages_manage_posts",),
        "capture_own_posts": ("pages_read_engagement",),
        "capture_replies": ("pages_read_user_content",),
        "capture_mentions": ("pages_read_user_content",),
        "capture_direct_messages": ("pages_messaging",),
        "capture_edits": ("pages_read_engagement",),
        "capture_deletions": ("pages_read_engagement",),
        "capture_profile": ("pages_read_engagement",),
    }
    capabilities = Capabilities(
        publish_post=True,
        publish_reply=True,
        publish_media=True,
        delete=True,
        capture_own_posts=True,
        capture_replies=True,
        capture_mentions=True,
        capture_direct_messages=True,
        capture_edits=True,
        capture_deletions=True,
        capture_profile=True,
        streaming=False,
        oauth2=True,
        token_refresh=False,
        search=False,
        notes=(
            "Page tokens obtained through a long-lived user token do not expire, so there is "
            "nothing to refresh; they are invalidated when the person loses their Page role, "
            "changes their password or removes the app (Graph error 190): reconnect then.",
            "Edits: the Graph API keeps no edit history and updated_time also moves when "
            "someone comments, so an edit is found by re-reading posts of the re-fetch window "
            "(rescan_days) and comparing their content; edits of older posts are not seen.",
            "Deletions: found only by re-fetch (a post missing from the window that the Graph "
            "API then reports as non-existent). Deleted comments by others are not detected.",
            "Mentions: posts that tag the Page are captured (/{page-id}/tagged); mentions in "
            "comments elsewhere are only delivered by webhooks, which Vetline does not receive.",
            "Messages (Messenger Platform, pages_messaging): a Page may reply only within 24 "
            "hours of the person's last message (7 days with the HUMAN_AGENT tag); Vetline "
            "captures conversations but does not send messages.",
            "Search of public posts is not offered by the Graph API to Page apps.",
        ),
    )
    page_fields = PAGE_FIELDS

    def page_id(self, client: GraphClient, tokens: TokenSet) -> str:
        """The Page of a Page token: stored at connection, else ``/me`` (a Page token's
        ``/me`` is the Page)."""
        if tokens.remote_account_id:
            return tokens.remote_account_id
        me = client.get(("me",), {"fields": "id"})
        if not isinstance(me, dict) or not isinstance(me.get("id"), str):
            raise PermanentError("the Graph API did not say which Page this token is for")
        return str(me["id"])

    # --- Authentication -----------------------------------------------------------------------
    def exchange_code(
        self,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        account: AccountRef | None = None,
    ) -> TokenSet:
        result = self.login(code=code, redirect_uri=redirect_uri, code_verifier=code_verifier)
        page = choose_for_account(result.pages, account, names=entry_names, what="Pages")
        return TokenSet(
            access_token=page["access_token"],
            expires_at=None,  # a Page token from a long-lived user token does not expire
            scopes=result.scopes,
            remote_account_id=str(page["id"]),
            remote_handle=str(page.get("username") or page.get("name") or page["id"]),
        )

    # --- Publishing ---------------------------------------------------------------------------
    def publish(
        self, *, tokens: TokenSet, request: PublishRequest, account: AccountRef | None = None
    ) -> PublishResult:
        client = self.client(tokens.access_token)
        if request.reply_to_remote_id:
            if len(request.media) > 1:
                raise PermanentError("a Facebook comment takes at most one image")
            files = _files(request.media[0]) if request.media else None
            answer = client.call(
                "POST",
                (request.reply_to_remote_id, "comments"),
                {"message": request.text},
                files=files,
                idempotent=False,
            ).json()
            return PublishResult(_id(answer), f"https://www.facebook.com/{_id(answer)}")
        page_id = self.page_id(client, tokens)
        if not request.media:
            answer = client.call(
                "POST", (page_id, "feed"), {"message": request.text}, idempotent=False
            ).json()
            post_id = _id(answer)
        elif len(request.media) == 1:
            media = request.media[0]
            params: dict[str, Any] = {"message": request.text, "published": "true"}
            if media.alt_text:
                params["alt_text_custom"] = media.alt_text
            answer = client.call(
                "POST", (page_id, "photos"), params, files=_files(media), idempotent=False
            ).json()
            post_id = str(answer.get("post_id") or _id(answer))
        else:
            photo_ids = []
            for media in request.media:
                params = {"published": "false"}
                if media.alt_text:
                    params["alt_text_custom"] = media.alt_text
                photo = client.call(
                    "POST", (page_id, "photos"), params, files=_files(media), idempotent=False
                ).json()
                photo_ids.append(_id(photo))
            answer = client.call(
                "POST",
                (page_id, "feed"),
                {
                    "message": request.text,
                    "attached_media": [{"media_fbid": pid} for pid in photo_ids],
                },
                idempotent=False,
            ).json()
            post_id = _id(answer)
        return PublishResult(post_id, f"https://www.facebook.com/{post_id}")

    def delete(
        self, *, tokens: TokenSet, remote_id: str, account: AccountRef | None = None
    ) -> None:
        try:
            self.client(tokens.access_token).call("DELETE", (remote_id,))
        except ObjectGone:
            return  # already gone: deleting is idempotent

    # --- Capture ------------------------------------------------------------------------------
    def resolve_media(self, *, tokens: TokenSet, media: MediaRef) -> list[MediaRef]:
        """A post's media, asked of the Graph API with the Page token when they are fetched
        (``attachments``; see :func:`attachment_media`)."""
        post_id = graph_object_id(media)
        if post_id is None:
            return [media]
        client = self.client(tokens.access_token)
        return attachment_media(client.get((post_id,), {"fields": ATTACHMENT_FIELDS}))

    def fetch_activity(
        self, *, tokens: TokenSet, handle: str, cursor: str | None, limit: int = 100
    ) -> ActivityPage:
        client = self.client(tokens.access_token)
        page_id = self.page_id(client, tokens)
        messaging_granted = not tokens.scopes or "pages_messaging" in tokens.scopes

        def seed() -> list[Task]:
            tasks = [Task("profile"), Task("posts"), Task("tagged")]
            if messaging_granted:
                tasks.append(Task("conversations"))
            return tasks

        def run(task: Task, state: SweepCursor) -> TaskResult:
            limit_ = max(1, min(limit, 100))
            if task.stream == "profile":
                return self._profile_task(client, page_id, handle)
            if task.stream == "posts":
                return self._posts_task(client, task, state, page_id, handle, limit_)
            if task.stream == "comments":
                return self._comments_task(client, task, page_id, handle, limit_)
            if task.stream == "tagged":
                return self._tagged_task(client, task, state, page_id, limit_)
            if task.stream == "conversations":
                return messaging.conversations(
                    client, task, state, page_id=page_id, network=NETWORK, limit=limit_
                )
            if task.stream == "messages":
                return messaging.messages(
                    client, task, state, own_ids={page_id}, network=NETWORK, limit=limit_
                )
            if task.stream == "confirm":
                return confirm(client, task, state, author=handle, now=self.clock.now())
            return TaskResult()

        return run_step(
            cursor,
            now=self.clock.now(),
            window_seconds=self.window_seconds,
            seed=seed,
            run=run,
        )

    def _profile_task(self, client: GraphClient, page_id: str, handle: str) -> TaskResult:
        result = TaskResult()
        answer = client.call("GET", (page_id,), {"fields": PROFILE_FIELDS})
        body = answer.json()
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            result.items.append(answer.body)
            return result
        result.items.append(profile_snapshot(answer.body, body, handle=handle))
        return result

    def _posts_task(
        self,
        client: GraphClient,
        task: Task,
        state: SweepCursor,
        page_id: str,
        handle: str,
        limit: int,
    ) -> TaskResult:
        result = TaskResult()
        params: dict[str, Any] = {"fields": POST_FIELDS, "limit": limit}
        if state.window_start:
            params["since"] = int(state.window_start)
        answer = list_request(client, (page_id, "feed"), params, task.page)
        rows = messaging.page_data(answer, network=NETWORK, stream="posts", result=result)
        if rows is None:
            return result
        for row in rows:
            at = graph_time(row.get("created_time")) if isinstance(row, dict) else None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str) or at is None:
                result.items.append(
                    unreadable(row, network=NETWORK, stream="posts", reason="no id or time")
                )
                continue
            sender = _mapping(row.get("from"))
            own = str(sender.get("id", page_id)) == page_id
            text = "\n".join(
                t for t in (row.get("message"), row.get("story")) if isinstance(t, str)
            )
            fields = {
                "kind": "post",
                "direction": "outbound" if own else "inbound",
                "author": handle if own else _name(sender),
                "text": text,
                "thread_id": row["id"],
                "network_timestamp": at,
            }
            if own:
                own_post(state, result, row, remote_id=row["id"], created=epoch(at), **fields)
            else:  # a visitor's post on the Page
                result.items.append(item(row, remote_id=row["id"], **fields))
            last = result.items[-1]
            if isinstance(last, dict):
                with_media(last, [graph_object(row["id"])])
            result.follow_ups.append(Task("comments", row["id"]))
        token = next_page(answer.json())
        if token:
            result.next_page = Task("posts", "", token)
        return result

    def _tagged_task(
        self, client: GraphClient, task: Task, state: SweepCursor, page_id: str, limit: int
    ) -> TaskResult:
        """Posts by others that tag the Page: mentions, inbound."""
        result = TaskResult()
        params: dict[str, Any] = {"fields": TAGGED_FIELDS, "limit": limit}
        if state.window_start:
            params["since"] = int(state.window_start)
        answer = list_request(client, (page_id, "tagged"), params, task.page)
        rows = messaging.page_data(answer, network=NETWORK, stream="tagged", result=result)
        if rows is None:
            return result
        for row in rows:
            at = graph_time(row.get("created_time")) if isinstance(row, dict) else None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str) or at is None:
                result.items.append(
                    unreadable(row, network=NETWORK, stream="tagged", reason="no id or time")
                )
                continue
            result.items.append(
                with_media(
                    item(
                        row,
                        remote_id=row["id"],
                        kind="post",
                        direction="inbound",
                        author=_name(_mapping(row.get("from"))),
                        text=_str(row.get("message")),
                        thread_id=row["id"],
                        network_timestamp=at,
                    ),
                    [graph_object(row["id"])],
                )
            )
        token = next_page(answer.json())
        if token:
            result.next_page = Task("tagged", "", token)
        return result

    def _comments_task(
        self, client: GraphClient, task: Task, page_id: str, handle: str, limit: int
    ) -> TaskResult:
        result = TaskResult()
        params = {
            "fields": COMMENT_FIELDS,
            "filter": "stream",
            "order": "chronological",
            "limit": limit,
        }
        try:
            answer = list_request(client, (task.target, "comments"), params, task.page)
        except ObjectGone:
            return result  # the post went away since it was listed: the confirm step sees it
        rows = messaging.page_data(answer, network=NETWORK, stream="comments", result=result)
        if rows is None:
            return result
        for row in rows:
            at = graph_time(row.get("created_time")) if isinstance(row, dict) else None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str) or at is None:
                result.items.append(
                    unreadable(row, network=NETWORK, stream="comments", reason="no id or time")
                )
                continue
            sender = _mapping(row.get("from"))
            own = str(sender.get("id", "")) == page_id
            parent = row.get("parent") if isinstance(row.get("parent"), dict) else None
            parent_id = str(parent["id"]) if parent and parent.get("id") else task.target
            result.items.append(
                item(
                    row,
                    remote_id=row["id"],
                    kind="reply" if parent else "comment",
                    direction="outbound" if own else "inbound",
                    author=handle if own else _name(sender),
                    text=row.get("message") if isinstance(row.get("message"), str) else "",
                    parent_remote_id=parent_id,
                    thread_id=task.target,
                    network_timestamp=at,
                )
            )
        token = next_page(answer.json())
        if token:
            result.next_page = Task("comments", task.target, token)
        return result

    def fetch_profile(self, *, tokens: TokenSet, handle: str) -> Profile:
        client = self.client(tokens.access_token)
        body = client.get((self.page_id(client, tokens),), {"fields": PROFILE_FIELDS})
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise PermanentError("the Graph API returned an unreadable Page profile")
        return Profile(
            handle=str(body.get("username") or handle),
            display_name=_str(body.get("name")),
            bio=_str(body.get("about")) or _str(body.get("description")),
            url=_str(body.get("link")),
            remote_account_id=body["id"],
            raw=body,
        )


def confirm(
    client: GraphClient, task: Task, state: SweepCursor, *, author: str, now: float
) -> TaskResult:
    """Is an own post that vanished from the listing deleted, or just not listed?"""
    result = TaskResult()
    try:
        client.call("GET", (task.target,), {"fields": "id"})
    except ObjectGone as gone:
        result.items.append(
            deletion(task.target, answer=gone.answer or b"{}", author=author, at=_iso(now))
        )
        return result
    if task.target in state.known:
        result.seen[task.target] = state.known[task.target]
    return result


def profile_snapshot(payload: bytes, body: dict[str, Any], *, handle: str) -> dict[str, Any]:
    """A profile snapshot keeping the exact answer. Its id changes with the content, so an
    unchanged profile is a duplicate and a changed one a new record; it has no network time
    (when it was read is the archive's capture time)."""
    digest = hashlib.sha256(payload).hexdigest()[:16]
    bio = (
        text_of(body.get("about"))
        or text_of(body.get("description"))
        or text_of(body.get("biography"))
    )
    return raw_item(
        payload,
        remote_id=f"profile:{body['id']}:{digest}",
        kind="profile_snapshot",
        direction="outbound",
        author=handle,
        text=f"{text_of(body.get('name'))}\n{bio}".strip(),
    )


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def _files(media: Any) -> dict[str, Any]:
    extension = media.mime_type.rsplit("/", 1)[-1] or "bin"
    return {"source": (f"image.{extension}", media.content, media.mime_type)}


def _id(answer: Any) -> str:
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), str | int):
        raise PermanentError("the Graph API did not return the id of what was published")
    return str(answer["id"])


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _name(person: Mapping[str, Any]) -> str:
    for key in ("name", "username", "id"):
        value = person.get(key)
        if isinstance(value, str) and value:
            return value[:300]
    return ""


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
