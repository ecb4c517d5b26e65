"""The `majlis` command. Thin: each command builds objects, calls one library function, and turns
MajlisError into one line on stderr and an exit code. Heavy engines load only inside commands."""

from __future__ import annotations

import logging
import sys

import click

from .. import __version__
from ..errors import MajlisError


class MajlisGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MajlisError as e:
            click.echo(f"majlis: error: {e}", err=True)
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


def _register() -> None:
    # Each module owns its commands; none imports an engine at import time.
    from . import batch, rename, search, serve, transcribe

    for module in (transcribe, rename, search, batch, serve):
        for command in module.commands:
            main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
