"""The app for any WSGI server, configured from the environment.

    NEWSLETTER_CONFIG=/srv/news/newsletter.yaml NEWSLETTER_SECRET_KEY=... \\
        gunicorn --workers 4 --bind 127.0.0.1:8000 newsletter.web.wsgi:app

``NEWSLETTER_CONFIG`` names the config file (default: the nearest ``newsletter.yaml``
in the working folder or above), as for the ``newsletter`` command.

A worker that stops (gunicorn's graceful stop, reload or ``--max-requests``) finishes
its queued work first, as ``serve`` does: click counts still in memory, one-click
unsubscribes, mail. Only a killed worker loses its last second of click counts.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

from newsletter.config import load_config
from newsletter.web.app import create_app, shutdown

_config_path = os.environ.get("NEWSLETTER_CONFIG")
app = create_app(load_config(Path(_config_path) if _config_path else None))
atexit.register(shutdown, app)
