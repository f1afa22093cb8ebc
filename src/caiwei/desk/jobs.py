from caiwei.jobs.runner import on_tick

from .escalation import sweep


@on_tick
def escalation_tick() -> None:
    sweep()
