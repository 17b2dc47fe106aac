"""``newsletter.yaml``: a declared schema with every default in one place.

Loading validates everything and reports every problem at once, each as
``newsletter.yaml: key.path: what is wrong``. Secrets never live here: the config
names the environment variables that hold them (``*_env`` keys), and
:func:`env_secret` reads them.

The parts, bottom up: ``fields`` (the value types and their checks, ``Schema``),
the sections (``identity``, ``providers``, ``sending``, ``subscribers``,
``automations``), ``model`` (``Config``, which holds them all) and ``loading``
(the file and the environment). The rest of the package imports from here.
"""

from __future__ import annotations

from newsletter.config.automations import AutomationSettings, parse_every
from newsletter.config.fields import Greeting, HttpUrl, OneLine, Schema, dns_name
from newsletter.config.loading import (
    CONFIG_FILENAME,
    SECRET_KEY_ENV,
    describe_validation_error,
    env_secret,
    find_config,
    library_paths,
    load_config,
    load_yaml_mapping,
)
from newsletter.config.model import DATABASE_URL_ENV, Config, ab_settings, missing_measure
from newsletter.config.providers import SesSettings
from newsletter.config.sending import AbOverrides, AbSettings, SendingSettings, TrackingSettings

__all__ = [
    "CONFIG_FILENAME",
    "DATABASE_URL_ENV",
    "SECRET_KEY_ENV",
    "AbOverrides",
    "AbSettings",
    "AutomationSettings",
    "Config",
    "Greeting",
    "HttpUrl",
    "OneLine",
    "Schema",
    "SendingSettings",
    "SesSettings",
    "TrackingSettings",
    "ab_settings",
    "describe_validation_error",
    "dns_name",
    "env_secret",
    "find_config",
    "library_paths",
    "load_config",
    "load_yaml_mapping",
    "missing_measure",
    "parse_every",
]
