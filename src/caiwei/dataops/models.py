"""数据运维 models, one module per part: the query console, data change requests, backups and DR drills."""

from .models_backups import *  # noqa: F403
from .models_changes import *  # noqa: F403
from .models_console import *  # noqa: F403
