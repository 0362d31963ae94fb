"""A human-readable HTML transcript of one conversation, printable to PDF.

Everything captured is escaped. Invisible and control characters (zero-width spaces,
direction overrides…) are shown as visible ``[U+XXXX]`` marks, so a reader of the transcript
sees that they are there and cannot be misled by reordered or hidden text.
"""

from __future__ import annotations

import html
import unicodedata
from typing import IO, Final

from vetline.archive.export.view import ConversationKey, RecordView, eml_path, iso

_STYLE: Final = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#111}
h1{font-size:1.3rem;margin:0 0 .3rem}
.meta{color:#555;font-size:.85rem;margin:0 0 1.2rem}
.event{border:1px solid #ccc;border-radius:6px;padding:.6rem .8rem;margin:.6rem 0}
.event.inbound{background:#f7f7f7}
.event.deletion{border-style:dashed;color:#555}
.head{font-size:.8rem;color:#444;margin-bottom:.3rem}
.text{white-space:pre-wrap;overflow-wrap:anywhere}
.mark{background:#fde68a;color:#7c2d12;font-family:monospace;font-size:.75rem}
.tag{font-size:.7rem;border:1px solid #999;border-radius:3px;padding:0 .25rem}
code{font-size:.75rem}
@media print{
 body{margin:0;font-size:10.5pt}
 .event{break-inside:avoid;page-break-inside:avoid}
 a{color:inherit;text-decoration:none}
 @page{margin:15mm}
}
"""


def _visible_char(ch: str) -> str:
    if ch in "\n\t":
        return ch
    category = unicodedata.category(ch)
    if category in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
        code = f"U+{ord(ch):04X}"
        return f'<span class="mark" title="invisible character {code}">[{code}]</span>'
    return html.escape(ch, quote=True)


def escape_text(value: str) -> str:
    """HTML-escape ``value`` and make invisible characters visible."""
    if value.isprintable():
        return html.escape(value, quote=True)
    return "".join(_visible_char(ch) for ch in value)


class TranscriptWriter:
    """Streams one conversation: :meth:`begin`, :meth:`event` per record version, :meth:`end`."""

    def __init__(self, fh: IO[str], key: ConversationKey, account_handle: str) -> None:
        self._fh = fh
        self._key = key
        self._account = account_handle
        self.count = 0

    def begin(self, *, exported_at: str) -> None:
        title = f"{self._key.network} · {self._account} · {self._key.label}"
        self._fh.write(
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape_text(title)}</title><style>{_STYLE}</style></head><body>\n"
            f"<h1>{escape_text(title)}</h1>\n"
            f'<p class="meta">Conversation transcript from the Vetline archive, exported '
            f"{escape_text(exported_at)}. Every version of every message is shown in time order; "
            "edits and deletions are new versions and never replace the original. Times are "
            "UTC. Invisible characters are shown as [U+XXXX].</p>\n"
        )

    def event(self, view: RecordView) -> None:
        self.count += 1
        classes = f"event {view.direction} {view.kind}"
        tags = [view.kind, view.direction, f"v{view.version}"]
        if view.direction == "inbound":
            tags.append("adopted" if view.adopted else "not adopted")
        parent = (
            f" · reply to <code>{escape_text(view.parent_remote_id)}</code>"
            if view.parent_remote_id
            else ""
        )
        attachments = "".join(f"<li><code>{escape_text(a)}</code></li>" for a in view.attachments)
        self._fh.write(
            f'<div class="{escape_text(classes)}" id="leaf-{view.log_index}">'
            f'<div class="head"><strong>{escape_text(view.author or "(unknown)")}</strong> · '
            f"{escape_text(iso(view.when))} · "
            + " ".join(f'<span class="tag">{escape_text(t)}</span>' for t in tags)
            + f" · id <code>{escape_text(view.remote_id)}</code>{parent}"
            f" · log index {view.log_index} · "
            f'<a href="../{eml_path(view.log_index)}">EML</a></div>'
            f'<div class="text">{escape_text(view.text)}</div>'
            + (f"<ul>{attachments}</ul>" if attachments else "")
            + "</div>\n"
        )

    def end(self) -> None:
        self._fh.write(f'<p class="meta">{self.count} record version(s).</p>\n</body></html>\n')
