"""What the archive tells the rest of Vetline.

``records_archived`` is sent once a batch that archived new records has committed, with
``account_id`` and ``record_ids`` (the new records, in log order). Receivers use it as a *kick*
only: anything that must see every record (supervision flags, the rogue-post alarm) keeps its own
cursor over record ids and catches up from it, so a crash between the commit and the signal
loses nothing. Receivers must be quick (queue a job) and must not raise.
"""

from __future__ import annotations

from django.dispatch import Signal

records_archived = Signal()
