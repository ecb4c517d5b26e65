"""The spellings whisper and WhisperX users type, on every command: `--model_dir` for `--model-dir` (any
multi-word flag, present or added later), and whisper's names for a few flags (`-o/--output_dir` for `--out`).
Underscore spellings are rewritten before parsing, so help lists each flag once."""

from __future__ import annotations

import click

# Flag -> the extra spellings it takes, shown in its help. An alias goes only onto a command that has the flag
# and does not use the alias already (`majlis clip -o` stays clip's own).
ALIASES = {
    "--out": ("-o", "--output-dir"),
    "--format": ("-f", "--output-format"),
    "--prompt": ("--initial-prompt",),
}


def add_aliases(command: click.Command) -> click.Command:
    taken = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        for flag, extra in ALIASES.items():
            if flag in param.opts:
                new = [a for a in extra if a not in taken]
                param.opts.extend(new)
                taken.update(new)
    return command


def underscored_args(command: click.Command, args: list[str]) -> list[str]:
    """`args` with each `--x_y` (or `--x_y=v`) that `command` knows as `--x-y` spelled that way."""
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("--")}
    out = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        name, eq, value = arg.partition("=")
        if name.startswith("--") and "_" in name and name not in known:
            dashed = "--" + name[2:].replace("_", "-")
            if dashed in known:
                arg = dashed + eq + value
        out.append(arg)
    return out
