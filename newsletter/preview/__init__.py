"""``newsletter preview``: a local web page that shows an issue as readers will see it.

- :mod:`~newsletter.preview.workspace`: renders issues for the page, rebuilt on change.
- :mod:`~newsletter.preview.app`: the WSGI app (pages, email frames, images, events).
- :mod:`~newsletter.preview.watch`: the file watcher that triggers the rebuilds.
- :mod:`~newsletter.preview.server`: the HTTP server that ties them together.
"""

from __future__ import annotations

from newsletter.preview.server import DEFAULT_PORT, PreviewServer
from newsletter.preview.workspace import Workspace

__all__ = ["DEFAULT_PORT", "PreviewServer", "Workspace"]
