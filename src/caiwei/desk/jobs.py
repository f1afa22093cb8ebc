from caiwei.jobs.runner import on_tick

from .escalation import sweep
from .outbox import send_pending
from .services import remind_surveys


@on_tick
def escalation_tick() -> None:
    sweep()


@on_tick
def survey_reminder_tick() -> None:
    remind_surveys()


@on_tick
def outbox_tick() -> None:
    """Send queued mail (replies to mailed tickets, notifications), retrying failures with growing delays."""
    send_pending()
