"""The `majlis` command. Thin: each command builds objects, calls one library function, and turns
MajlisError into one line on stderr and an exit code. Heavy engines load only inside commands."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from .. import __version__
from ..errors import MajlisError
from .aliases import add_aliases, underscored_args


# Command name -> (module, attribute). A command's module is imported only when that command runs (or help
# lists them): `majlis search` does not pay for importing transcribe, batch and serve (~50 ms of its start).
_COMMANDS = {
    "transcribe": ("transcribe", "transcribe_command"),
    "rename": ("rename", "rename_command"),
    "index": ("search", "index_command"),
    "search": ("search", "search_command"),
    "clip": ("search", "clip_command"),
    "speakers": ("search", "speakers_command"),
    "episodes": ("search", "episodes_command"),
    "batch": ("batch", "batch_command"),
    "batch-status": ("batch", "batch_status_command"),
    "serve": ("serve", "serve_command"),
    "voices": ("voices", "voices_command"),
}


FLAGS = {"out_dir": "--out", "index_dir": "--index"}  # arguments whose flag is not --<argument-with-dashes>


def flag(argument: str) -> str:
    """The command line's name for a library argument."""
    return FLAGS.get(argument, "--" + argument.replace("_", "-"))


def worded(e: MajlisError) -> str:
    """An error's message as the command line says it: the arguments it names, by their flags."""
    return e.worded(flag)


class MajlisGroup(click.Group):
    def list_commands(self, ctx: click.Context | None) -> list[str]:
        return sorted(set(self.commands) | set(_COMMANDS))

    def get_command(self, ctx: click.Context | None, name: str):
        if name not in self.commands and name in _COMMANDS:
            module, attr = _COMMANDS[name]
            command = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
            self.add_command(add_aliases(command), name)
        return self.commands.get(name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        return name, command, underscored_args(command, rest) if command is not None else rest

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MajlisError as e:
            click.echo(f"majlis: error: {worded(e)}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("majlis: interrupted", err=True)
            ctx.exit(130)


class _WarningLine(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"majlis: {record.levelname.lower()}: {record.getMessage()}", err=True)


@click.group(cls=MajlisGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="majlis")
def main() -> None:
    """Searchable, speaker-attributed, time-aligned transcripts of panels and podcasts."""
    log = logging.getLogger("majlis")
    if not log.handlers:
        log.addHandler(_WarningLine())
        log.setLevel(logging.WARNING)
        log.propagate = False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
