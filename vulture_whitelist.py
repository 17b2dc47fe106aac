"""Names vulture cannot see being used, each with who uses it.

Read by vulture only (``[tool.vulture]`` in pyproject.toml, ``make lint``, ``make test``),
never imported. A name belongs here only when something outside the package's Python
calls it: a framework by convention, a template, a name in a string, the tests.
Anything else vulture reports is dead: remove it.
"""

from vulture.whitelist_utils import Whitelist

_ = Whitelist()

# html.parser.HTMLParser calls these by name (feed_import, checks, links_check, mjml_schema).
_.handle_starttag
_.handle_startendtag
_.handle_endtag
_.handle_data

# http.server and socketserver: the preview server's overrides and class settings.
_.log_message
_.daemon_threads
_.allow_reuse_address
_.address_family

# The preview app dispatches to view_<endpoint> with getattr (preview/app.py).
_.view_index
_.view_page
_.view_email_html
_.view_email_text
_.view_asset
_.view_static
_.view_events

# Read by templates: theme settings (theme/*.j2, web/templates/mail) and the preview page.
_.logo_alt
_.dark_primary_color
_.text_color
_.muted_color
_.background_color
_.font_family
_.heading_font_family
_.hashtag
_.social
_.html_bytes

# Settings that libraries read: pydantic, click, dnspython, Jinja, Flask, SQLAlchemy,
# markdown-it-py (linkLevel, helpers), ssl (sock).
_.model_config
_.obj
_.format_commands
_.nameservers
_.lifetime
_.queries
_.sock
_.trim_blocks
_.lstrip_blocks
_.jinja_loader
_.isolation_level
_.impl
_.cache_ok
_.process_bind_param
_.process_result_value
_.linkLevel
_.helpers
_.content_security_policy  # read back with g.get(...) in web/security.py

# Parameters a protocol fixes: click callbacks, __exit__.
_.param
_.exc_info

# Providers are loaded by name from send/providers/__init__.py's table.
_.MailgunProvider
_.OutboxProvider
_.PostmarkProvider
_.SendGridProvider
_.SesProvider
_.SmtpProvider

# Library API used by the tests (and documented in docs/store.md, docs/architecture.md).
_.is_suppressed  # Store.is_suppressed
_.count_recipients  # Store.count_recipients
_.mailto_subject  # ReturnTokens: the mailto token's writer, tested against read_mailto
_.apply_delivery_event  # the one-event reference apply_delivery_events is tested against

# The run summary's fields (send/campaign.py), for callers of the library.
_.requeued_unknown

# Jinja's i18n extension reads it when it parses {% trans %} (languages/catalogs.py).
_.newstyle_gettext

# SQLAlchemy reads these (segments/sql.py: the compiled forms of `contains`).
_.inherit_cache
_._contains_default
_._contains_postgresql

# Fields of a dataclass written out by name through asdict (automation list --json).
_.posts_mailed  # automations/overview.py: DigestOverview

