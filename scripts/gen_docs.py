"""Generate docs/cli.md from `--help` and docs/configuration.md from the config schema.

    python scripts/gen_docs.py          # rewrite both files
    python scripts/gen_docs.py --check  # exit 1 if either is out of date (tests run this)

Generated, so the reference cannot drift from the code.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path

import click
from click.testing import CliRunner
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from newsletter.cli import cli
from newsletter.config import Config

ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = ROOT / "docs" / "cli.md"
CONFIG_DOC = ROOT / "docs" / "configuration.md"


def cli_reference() -> str:
    lines = [
        "# Command-line reference",
        "",
        "Generated from `--help` by `scripts/gen_docs.py`; do not edit by hand.",
        "",
    ]
    runner = CliRunner()
    cli.load_all()  # the commands are loaded lazily; the reference lists every one

    def walk(command: click.Command, path: list[str]) -> None:
        result = runner.invoke(
            cli, [*path[1:], "--help"], prog_name="newsletter", terminal_width=100
        )
        lines.extend([f"## `{' '.join(path)}`", "", "```", result.output.rstrip(), "```", ""])
        if isinstance(command, click.Group):
            for name in sorted(command.commands):
                walk(command.commands[name], [*path, name])

    walk(cli, ["newsletter"])
    return "\n".join(lines)


_VALIDATOR_NAMES = {
    "_valid_address": "email address",
    "_http_url": "URL",
    "_base_url": "URL",
    "_color": "colour",
    "_slug": "id",
    "_one_line": "one line of text",
    "_sample_percent": "percentage",
    "_wait": "duration",
}
_PLAIN_NAMES = {str: "text", int: "integer", float: "number", bool: "true/false"}


def _type_name(annotation: object) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        for meta in args[1:]:
            name = getattr(getattr(meta, "func", None), "__name__", "")
            if name in _VALIDATOR_NAMES:
                return _VALIDATOR_NAMES[name]
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        parts = [_type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(parts) + (", optional" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if origin is typing.Literal:
        return " / ".join(f"`{arg}`" for arg in args)
    if isinstance(annotation, type):
        return _PLAIN_NAMES.get(annotation, annotation.__name__)
    return str(annotation)


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is list:
        return _model_in(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        # An optional section (`smtp.dkim: ... | None`): its keys, once it is given.
        models = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _model_in(models[0]) if len(models) == 1 else None
    return None


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        key = f"{prefix}{field.alias or name}"
        annotation = field.annotation
        if typing.get_origin(annotation) is dict:  # a section per name (automations)
            section = _model_in(typing.get_args(annotation)[1])
            if section is not None:
                rows.append(f"| `{key}` | sections by name | `{{}}` | {field.description or ''} |")
                rows.extend(_rows(section, f"{key}.NAME."))
                continue
        nested = _model_in(annotation)
        if nested is not None and typing.get_origin(annotation) is not list:
            optional = ", optional" if field.default is None else ""
            rows.append(f"| `{key}` | section{optional} | | {field.description or ''} |")
            rows.extend(_rows(nested, f"{key}."))
            continue
        if field.default is not PydanticUndefined:
            default = f"`{field.default!r}`" if field.default not in (None, "") else "(none)"
        elif field.default_factory is not None:
            default = f"`{field.default_factory()!r}`"
        else:
            default = "**required**"
        type_name = _type_name(annotation)
        for meta in field.metadata:  # pydantic moves Annotated[...] validators here
            validator = getattr(getattr(meta, "func", None), "__name__", "")
            type_name = _VALIDATOR_NAMES.get(validator, type_name)
        rows.append(
            f"| `{key}` | {type_name} | {default} | {(field.description or '').replace('|', '/')} |"
        )
        if nested is not None:
            rows.extend(_rows(nested, f"{key}[]."))
    return rows


def config_reference() -> str:
    lines = [
        "# Configuration reference: `newsletter.yaml`",
        "",
        "Generated from the schema in `newsletter/config/` by `scripts/gen_docs.py`.",
        "Secrets never go in this file: keys ending in `_env` name the environment",
        "variable that holds the secret. `NEWSLETTER_SECRET_KEY` signs the links in mail;",
        "`NEWSLETTER_DATABASE_URL` overrides `database_url`. `NEWSLETTER_LIBRARY_PATHS=1`",
        "turns off the speed shortcuts over library internals (link tokens, Markdown links):",
        "the libraries' own code does that work, with the same output, a little slower; the",
        "way back if a library release breaks a shortcut (docs/performance.md).",
        "",
        "| key | type | default | what it does |",
        "| --- | --- | --- | --- |",
    ]
    lines.extend(_rows(Config, ""))
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    outputs = {CLI_DOC: cli_reference(), CONFIG_DOC: config_reference()}
    stale = [
        path
        for path, text in outputs.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    if "--check" in sys.argv:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python scripts/gen_docs.py")
        return 1 if stale else 0
    for path in stale:
        path.write_text(outputs[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
