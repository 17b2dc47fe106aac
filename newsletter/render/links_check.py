"""``newsletter check --links``: request every link of an issue and report broken ones.

Links are requested concurrently, each with a timeout (HEAD first, GET where a server
refuses HEAD). Working links are remembered for a day in a small JSON file under
``build/.cache/``, so checking again while editing only asks about new or broken ones.
Only the links written in the issue file are checked: the newsletter's own (logo, social
profiles, unsubscribe and preference pages with sample tokens) come from the config and
the theme.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from http.client import HTTPException
from pathlib import Path

from newsletter import __version__
from newsletter.config import Config
from newsletter.models import CompiledIssue

CACHE_MAX_AGE = 24 * 3600.0  # seconds a working link is trusted without asking again
DEFAULT_TIMEOUT = 10.0
WORKERS = 8
USER_AGENT = f"newsletter-link-check/{__version__}"
# Statuses where a server refuses HEAD (or bots) but the page may well exist: try GET.
_RETRY_WITH_GET = {403, 405, 501}


@dataclass(frozen=True)
class LinkStatus:
    url: str
    ok: bool
    reason: str  # "200", "404 Not Found", "timed out after 10 s", "cannot connect: ..."


def cache_file(config: Config) -> Path:
    return config.root / "build" / ".cache" / "links.json"


def check_links(
    urls: Iterable[str],
    *,
    cache: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    now: float | None = None,
) -> dict[str, LinkStatus]:
    """Each distinct URL's status; working links from ``cache`` younger than a day are
    not requested again."""
    now = time.time() if now is None else now
    known = _read_cache(cache)
    results: dict[str, LinkStatus] = {}
    to_request = []
    for url in dict.fromkeys(urls):
        checked_at = known.get(url)
        if checked_at is not None and now - checked_at < CACHE_MAX_AGE:
            results[url] = LinkStatus(url, True, "ok (checked recently)")
        else:
            to_request.append(url)
    if to_request:
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(to_request))) as pool:
            for status in pool.map(lambda url: _request(url, timeout), to_request):
                results[status.url] = status
                if status.ok:
                    known[status.url] = now
    if cache is not None:
        _write_cache(cache, {url: at for url, at in known.items() if now - at < CACHE_MAX_AGE})
    return results


def _request(url: str, timeout: float) -> LinkStatus:
    status = _one_request(url, "HEAD", timeout)
    code = status.reason.split(" ")[0]
    if not status.ok and code.isdigit() and int(code) in _RETRY_WITH_GET:
        status = _one_request(url, "GET", timeout)
    return status


def _one_request(url: str, method: str, timeout: float) -> LinkStatus:
    request = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return LinkStatus(url, True, str(response.status))
    except urllib.error.HTTPError as error:
        error.close()  # it holds the connection
        return LinkStatus(url, False, f"{error.code} {error.reason}")
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            return LinkStatus(url, False, f"timed out after {timeout:g} s")
        text = getattr(reason, "strerror", None) or str(reason)
        return LinkStatus(url, False, f"cannot connect: {text}")
    except TimeoutError:
        return LinkStatus(url, False, f"timed out after {timeout:g} s")
    except (HTTPException, OSError, ValueError) as error:
        return LinkStatus(url, False, f"cannot fetch: {error}")


def _read_cache(path: Path | None) -> dict[str, float]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no cache yet, or a damaged one: ask again
    if not isinstance(data, dict):
        return {}
    return {str(url): float(at) for url, at in data.items() if isinstance(at, int | float)}


def _write_cache(path: Path, known: dict[str, float]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=0, sort_keys=True), encoding="utf-8")
    except OSError:
        pass  # a cache that cannot be written only costs time next run


# -- which links an issue has, and where ---------------------------------------------


def issue_links(compiled: CompiledIssue, source: str) -> list[str]:
    """Every http(s) link and remote image of the compiled issue that the issue file
    itself holds, in order. The newsletter's own links (logo, social profiles, the
    reader's pages) come from newsletter.yaml and the theme, the same in every issue."""
    collector = _UrlCollector()
    collector.feed(compiled.html)
    return [
        url
        for url in dict.fromkeys(collector.urls)
        if url.startswith(("http://", "https://")) and url in source
    ]


def line_of(url: str, source_lines: list[str]) -> int | None:
    """The first line of the issue file that holds ``url``."""
    for number, line in enumerate(source_lines, start=1):
        if url in line:
            return number
    return None


class _UrlCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        url = values.get("href") if tag == "a" else values.get("src") if tag == "img" else None
        if url:
            self.urls.append(url)


def broken_links(
    compiled: CompiledIssue, config: Config, *, timeout: float = DEFAULT_TIMEOUT
) -> Iterator[tuple[int | None, LinkStatus]]:
    """(line in the issue file, status) of each broken link, in the order they appear."""
    source = compiled.issue.path.read_text(encoding="utf-8")
    urls = issue_links(compiled, source)
    statuses = check_links(urls, cache=cache_file(config), timeout=timeout)
    source_lines = source.splitlines()
    for url in urls:
        if not statuses[url].ok:
            yield line_of(url, source_lines), statuses[url]
