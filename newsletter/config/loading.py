"""Finding, reading and checking ``newsletter.yaml`` (every problem reported at once,
each naming its key), and the settings that live in the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from newsletter.config.model import Config
from newsletter.errors import ConfigError

CONFIG_FILENAME = "newsletter.yaml"
SECRET_KEY_ENV = "NEWSLETTER_SECRET_KEY"
# Set to 1: the libraries' own code instead of the speed shortcuts over their internals.
LIBRARY_PATHS_ENV = "NEWSLETTER_LIBRARY_PATHS"

# libyaml's loader where PyYAML was built with it: five times faster, same safe subset.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def env_secret(variable: str) -> str | None:
    """A secret from the environment; empty counts as unset."""
    return os.environ.get(variable) or None


def library_paths() -> bool:
    """True when ``NEWSLETTER_LIBRARY_PATHS`` is set (and not 0): the speed shortcuts that
    copy library internals are off, and the libraries do that work themselves (tokens:
    itsdangerous signs each one; Markdown: markdown-it-py's own link rule and URL
    normalisation). The output is the same (tested); the way back if a library release
    the shortcuts were not tested on changes what they copy."""
    return os.environ.get(LIBRARY_PATHS_ENV, "0").strip() not in ("", "0")


def find_config(start: Path | None = None) -> Path:
    """``newsletter.yaml`` in ``start`` (default: the current folder) or a folder above it."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_FILENAME} in {here} or any folder above it; "
        "run 'newsletter init' to create one, or pass --config"
    )


def load_yaml_mapping(path: Path, text: str, *, what: str) -> dict[str, Any]:
    """Parse YAML that must be a mapping; errors name the file and line."""
    try:
        data = yaml.load(text, Loader=_SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        raise ConfigError(f"{path}{line}: {problem}; fix the YAML syntax on that line") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {what} must be a mapping of keys to values")
    return data


def describe_validation_error(error: ValidationError, label: str) -> list[str]:
    """Turn pydantic's errors into ``label: key.path: message`` lines."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "missing":
            message = "required; add this key"
        elif item["type"] == "extra_forbidden":
            message = "unknown key; check its spelling"
        elif item["type"] == "literal_error":
            message = f"must be one of {item['ctx']['expected']}"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
        if not item["loc"] and item["type"] == "value_error":
            lines.append(f"{label}: {message}")  # a check across keys names them itself
            continue
        lines.append(f"{label}: {path}: {message}")
    return lines


def load_config(path: Path | None = None) -> Config:
    """Load and validate ``newsletter.yaml``; every problem is reported at once."""
    path = path or find_config()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; run 'newsletter init' to create one") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    data = load_yaml_mapping(path, text, what="the config")
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        problems = describe_validation_error(error, path.name)
        raise ConfigError("\n".join(problems), problems=problems) from None
    return config.model_copy(update={"root": path.parent.resolve()})
