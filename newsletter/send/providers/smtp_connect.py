"""Who we say we are to an SMTP server, and whom we trust: the EHLO name and TLS.

The EHLO name is ``smtp.local_hostname``, else this machine's fully qualified name,
else the From address's domain: a bare host name (``vm``) is refused by many relays
(``504 5.5.2 Helo command rejected: need fully-qualified hostname``) and scored as
spam by receivers. The TLS context verifies the server's certificate and host name,
against ``smtp.ca_file`` when the server's certificate comes from a private CA.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

_NOT_FQDN_SUFFIXES = (".localdomain", ".local", ".localhost", ".internal", ".lan", ".home")


def default_local_hostname(sender_email: str) -> str:
    """This machine's fully qualified name when it has one, else the From domain.

    The FQDN is looked up once per provider, from the host name and, if that has no
    dot, the resolver's canonical name (``/etc/hosts`` first): never per connection,
    as a slow DNS would stall every connection.
    """
    for candidate in _host_names():
        if _looks_fully_qualified(candidate):
            return candidate
    return sender_email.rpartition("@")[2]


def _host_names() -> list[str]:
    hostname = socket.gethostname()
    names = [hostname]
    if "." not in hostname:
        try:
            infos = socket.getaddrinfo(hostname, None, flags=socket.AI_CANONNAME)
        except OSError:
            infos = []
        names.extend(info[3] for info in infos if info[3])
    return names


def _looks_fully_qualified(name: str) -> bool:
    name = name.rstrip(".").lower()
    if "." not in name or name.endswith(_NOT_FQDN_SUFFIXES):
        return False
    return not name.replace(".", "").isdigit()  # an IP address is no host name


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificate and host name verified; against ``ca_file`` only, when it is given."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
