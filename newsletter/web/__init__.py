"""The subscriber web app: unsubscribe, preferences, double opt-in, the SendGrid webhook.

``create_app(config)`` builds the Flask app; ``newsletter serve`` runs it with waitress,
and any WSGI server can run :mod:`newsletter.web.wsgi` (gunicorn on Linux). Only this
package imports Flask.
"""

from __future__ import annotations

from newsletter.web.app import create_app, create_server, listening_on, shutdown

__all__ = ["create_app", "create_server", "listening_on", "shutdown"]
