from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from . import runner


@db_task()
def run_job_task(job_id: int) -> None:
    runner.run_job(job_id)


@db_periodic_task(crontab(minute="*"))
def tick_task() -> None:
    runner.tick()
