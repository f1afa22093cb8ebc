from caiwei.jobs.runner import on_tick

from .escalation import sweep
from .services import remind_surveys


@on_tick
def escalation_tick() -> None:
    sweep()


@on_tick
def survey_reminder_tick() -> None:
    remind_surveys()
