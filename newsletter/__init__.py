"""Publish an email newsletter from Markdown issues.

The package is a library first; :mod:`newsletter.cli` is a thin face over it.
See ``docs/architecture.md`` for the pipeline and the module map.
"""

from __future__ import annotations

__version__ = "0.1.0"
