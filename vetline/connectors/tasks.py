"""Background jobs of the connector layer: periodic capture of every connected account (one
job per account, taking its id), the lag check, and the sandbox's simulated customers."""

from __future__ import annotations

import logging

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from vetline.core.context import RequestContext, use_context

logger = logging.getLogger(__name__)


@db_task()
def capture_account_task(account_id: int) -> str:
    from vetline.connectors.actions import capture_account

    with use_context(RequestContext(channel="job")):
        return capture_account(account_id=account_id).status


@db_periodic_task(crontab(minute=f"*/{settings.VETLINE_CAPTURE_INTERVAL_MINUTES}"))
@lock_task("connectors-capture-all")
def capture_all_job() -> int:
    """Queue a capture of every connected account."""
    from vetline.connectors.actions import capture_due_account_ids

    ids = capture_due_account_ids()
    for account_id in ids:
        capture_account_task(account_id)
    logger.info("connectors.capture.scheduled", extra={"accounts": len(ids)})
    return len(ids)


@db_periodic_task(crontab(minute="*/5"))
def capture_lag_job() -> int:
    from vetline.connectors.actions import check_capture_lag

    with use_context(RequestContext(channel="job")):
        return check_capture_lag()


@db_periodic_task(crontab(minute="*"))
def sandbox_simulator_job() -> int:
    """Simulated customers reply and write DMs on the sandbox (training) timelines."""
    if not settings.VETLINE_SANDBOX_SIMULATOR:
        return 0
    from vetline.connectors.sandbox.simulator import simulate

    return simulate(actions=2)


@db_task()
def probe_connection_task(connection_id: int) -> bool:
    """Check what a connection's granted access allows (after connecting, or on request)."""
    from vetline.connectors.actions import probe_connection

    with use_context(RequestContext(channel="job")):
        return probe_connection(connection_id=connection_id) is not None
