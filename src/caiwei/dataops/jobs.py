"""Background jobs of data operations: each part registers its own job kinds in its own module."""

from . import jobs_backups, jobs_changes  # noqa: F401
