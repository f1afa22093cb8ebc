"""`caiwei data ...` subcommands of the console part: add_arguments(sub) adds them, handle(command, options) runs one."""

ACTIONS: tuple[str, ...] = ()


def add_arguments(sub) -> None:
    return None


def handle(command, options) -> None:
    raise NotImplementedError(options["action"])
