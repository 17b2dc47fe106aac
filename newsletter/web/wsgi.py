"""The app for any WSGI server, configured from the environment.

    NEWSLETTER_CONFIG=/srv/news/newsletter.yaml NEWSLETTER_SECRET_KEY=... \\
        gunicorn --workers 4 --bind 127.0.0.1:8000 newsletter.web.wsgi:app

``NEWSLETTER_CONFIG`` names the config file (default: the nearest ``newsletter.yaml``
in the working folder or above), as for the ``newsletter`` command.
"""

from __future__ import annotations

import os
from pathlib import Path

from newsletter.config import load_config
from newsletter.web.app import create_app

_config_path = os.environ.get("NEWSLETTER_CONFIG")
app = create_app(load_config(Path(_config_path) if _config_path else None))
