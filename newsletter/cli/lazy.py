"""Commands loaded on first use, so ``newsletter --help`` and ``newsletter build`` do not
pay for Flask, SQLAlchemy and the preview server (click's documented lazy-group pattern).

Each command module still registers its commands on the group with ``@cli.command()``;
the group imports a module only when one of its commands is asked for. ``--help`` lists
the commands from the summaries kept here, without importing anything; a test checks
that each summary matches its command's own help.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import click


class LazyCommand(NamedTuple):
    module: str  # the module that registers the command on the group when imported
    summary: str  # the command's short help, as `newsletter --help` lists it


class LazyGroup(click.Group):
    def __init__(self, *args: object, lazy_commands: dict[str, LazyCommand], **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            lazy = self.lazy_commands.get(cmd_name)
            if lazy is not None:
                importlib.import_module(lazy.module)
            else:
                # A command registered by a module missing from the table: look everywhere
                # (slow, but only for a name that is not in the table).
                self.load_all()
        return self.commands.get(cmd_name)

    def load_all(self) -> None:
        for module in sorted({lazy.module for lazy in self.lazy_commands.values()}):
            importlib.import_module(module)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            lazy = self.lazy_commands.get(name)
            if lazy is not None and name not in self.commands:
                # A stand-in with the same help shortens it exactly as click would.
                stand_in = click.Command(name, help=lazy.summary)
                rows.append((name, stand_in.get_short_help_str(limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
