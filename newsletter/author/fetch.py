"""Fetching pages, feeds and images for ``newsletter new --from``: one small client with
a timeout, a size limit and errors that say what to do."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from newsletter import __version__
from newsletter.errors import NewsletterError

TIMEOUT = 20.0
USER_AGENT = f"newsletter/{__version__} (+https://github.com/newsletter)"
MAX_PAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_BYTES = 25 * 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    data: bytes
    content_type: str


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def fetch(url: str, *, max_bytes: int = MAX_PAGE_BYTES, timeout: float = TIMEOUT) -> Fetched:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise NewsletterError(
                    f"{url}: larger than {max_bytes // (1024 * 1024)} MB; save the page and "
                    "use --from FILE.html"
                )
            return Fetched(response.geturl(), data, response.headers.get_content_type())
    except urllib.error.HTTPError as error:
        error.close()  # it holds the connection
        raise NewsletterError(f"{url}: the server answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise NewsletterError(
            f"{url}: cannot fetch it ({reason}); check the address and your connection"
        ) from None


def read_local(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NewsletterError(f"{path}: no such file") from None
    except OSError as error:
        raise NewsletterError(f"{path}: cannot read it ({error.strerror})") from None
