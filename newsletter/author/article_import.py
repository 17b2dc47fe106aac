"""``newsletter new --from URL|FILE.html``: a web article turned into an issue.

trafilatura finds the article in the page (dropping navigation, share buttons, tag
lists, comment forms and sidebars) and writes it as Markdown with headings, lists,
links and images; its metadata gives the title, author and date. The images are
downloaded into ``issues/images/``, once each (by URL and by content); an image
without a real alt text (none, or a list of search keywords) gets an ``alt:``
placeholder that ``newsletter check`` reports until the editor describes it. The issue
ends with a link to where it was first published.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import yaml

from newsletter.author.fetch import MAX_IMAGE_BYTES, fetch, is_url, read_local
from newsletter.author.scaffold import slugify
from newsletter.errors import NewsletterError
from newsletter.render.checks_source import ALT_PLACEHOLDER

PREHEADER_LENGTH = 140
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp"}
_CONTENT_TYPE_SUFFIX = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
}
# ![alt](src) as trafilatura writes it (no title, no spaces in the URL).
_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)")
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<href>[^)\s]+)\)")


@dataclass
class ImportedIssue:
    path: Path
    images: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the editor should look at


def import_article(source: str, issues_dir: Path, *, today: dt.date | None = None) -> ImportedIssue:
    import trafilatura  # lxml and friends: only for this command

    if is_url(source):
        page = fetch(source)
        html, base_url, origin = page.data, page.url, page.url
    else:
        path = Path(source)
        html, base_url, origin = read_local(path), None, None
    markdown = trafilatura.extract(
        html,
        url=base_url,
        output_format="markdown",
        include_images=True,
        include_links=True,
        include_formatting=True,
        include_tables=True,
        include_comments=False,
    )
    if not markdown or not markdown.strip():
        raise NewsletterError(
            f"{source}: found no article text in the page; copy the text into "
            "'newsletter new TITLE' instead"
        )
    metadata = trafilatura.extract_metadata(html, default_url=base_url)
    title = (metadata.title if metadata else None) or _title_from(source)
    origin = origin or (metadata.url if metadata and metadata.url else None)
    date = today or dt.date.today()
    issue_path = issues_dir / f"{date.isoformat()}-{slugify(title)}.md"
    if issue_path.exists():
        raise NewsletterError(f"{issue_path} already exists; rename or delete it first")

    result = ImportedIssue(issue_path)
    fetch_image = _image_fetcher(source, base_url)
    markdown = _localise_images(markdown, issues_dir, slugify(title), fetch_image, result)
    if base_url:
        markdown = _LINK.sub(lambda m: f"[{m['text']}]({urljoin(base_url, m['href'])})", markdown)

    matter: dict[str, object] = {"title": title, "preheader": _preheader(markdown), "date": date}
    if metadata and metadata.author:
        matter["author"] = {"name": metadata.author}
    matter["topics"] = []
    published = _published_line(
        origin, metadata.sitename if metadata else None, metadata.date if metadata else None
    )
    write_issue(issue_path, matter, markdown.strip() + "\n\n" + published + "\n")
    return result


def write_issue(path: Path, matter: dict[str, object], body: str) -> None:
    front = yaml.safe_dump(matter, sort_keys=False, allow_unicode=True, width=1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front}---\n\n{body}", encoding="utf-8")


def _title_from(source: str) -> str:
    name = Path(urlsplit(source).path if is_url(source) else source).stem
    return name.replace("-", " ").replace("_", " ").strip().capitalize() or "Imported article"


def _preheader(markdown: str) -> str:
    """The first sentence of the first paragraph, as inboxes show beside the subject."""
    for block in markdown.split("\n\n"):
        text = block.strip()
        if text and not text.startswith(("#", "!", ">", "-", "*", "|")) and not text[0].isdigit():
            text = _LINK.sub(lambda m: m["text"], " ".join(text.split()))
            sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
            if len(sentence) > PREHEADER_LENGTH:
                sentence = sentence[: PREHEADER_LENGTH - 1].rsplit(" ", 1)[0] + "…"
            return sentence
    return ""


def _published_line(origin: str | None, site: str | None, date: str | None) -> str:
    when = ""
    if date:
        try:
            day = dt.date.fromisoformat(date[:10])
            when = f" on {day.day} {day:%B %Y}"
        except ValueError:
            when = ""
    if origin:
        return f"*First published at [{site or urlsplit(origin).netloc}]({origin}){when}.*"
    return f"*First published{' by ' + site if site else ''}{when}.*"


def _looks_like_keywords(alt: str) -> bool:
    """Alt text stuffed with search keywords describes nothing: a reader needs words."""
    separators = alt.count(",") + alt.count(";")
    return separators >= 3 or len(alt) > 150


Fetcher = Callable[[str], tuple[bytes, str] | None]


def _image_fetcher(source: str, base_url: str | None) -> Fetcher:
    def from_web(src: str) -> tuple[bytes, str] | None:
        url = urljoin(base_url or "", src)
        if not is_url(url):
            return None
        image = fetch(url, max_bytes=MAX_IMAGE_BYTES)
        suffix = _CONTENT_TYPE_SUFFIX.get(image.content_type) or Path(urlsplit(url).path).suffix
        return image.data, suffix

    def from_folder(src: str) -> tuple[bytes, str] | None:
        if is_url(src):
            return from_web(src)
        # Only the page's own files: a saved page is someone else's HTML, and what is
        # copied into issues/images/ gets published (../ or /home/... could be anything).
        folder = Path(source).parent.resolve()
        try:
            path = (folder / unquote(src)).resolve()
            found = path.is_file()
        except (OSError, ValueError):
            return None
        if not path.is_relative_to(folder):
            raise NewsletterError(f"{src} is outside the page's folder ({folder}), not copied")
        return (read_local(path), path.suffix) if found else None

    return from_web if base_url else from_folder


def _localise_images(
    markdown: str, issues_dir: Path, slug: str, fetch_image: Fetcher, result: ImportedIssue
) -> str:
    images_dir = issues_dir / "images"
    # One file per distinct image: a page often shows one twice (a hero repeated, a
    # resized copy under another URL), and the second is neither fetched nor written.
    by_src: dict[str, Path] = {}
    by_hash: dict[str, Path] = {}

    def replace(match: re.Match[str]) -> str:
        alt, src = match["alt"].strip(), match["src"]
        if not alt or _looks_like_keywords(alt):
            alt = f"{ALT_PLACEHOLDER} describe this image"
        if src in by_src:
            return f"![{alt}](images/{by_src[src].name})"
        try:
            fetched = fetch_image(src)
        except NewsletterError as error:
            result.notes.append(f"image not downloaded, left as a link: {error}")
            return f"![{alt}]({src})"
        if fetched is None:
            result.notes.append(f"image {src} not found; left as it was")
            return f"![{alt}]({src})"
        data, suffix = fetched
        digest = hashlib.sha256(data).hexdigest()
        if digest in by_hash:
            by_src[src] = by_hash[digest]
            return f"![{alt}](images/{by_hash[digest].name})"
        suffix = suffix.lower() if suffix.lower() in IMAGE_SUFFIXES else ".jpg"
        stem = slugify(Path(urlsplit(src).path).stem) or "image"
        target = images_dir / f"{slug}-{stem}{suffix}"
        number = 2
        while target.exists() or target in result.images:
            target = images_dir / f"{slug}-{stem}-{number}{suffix}"
            number += 1
        images_dir.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        result.images.append(target)
        by_src[src] = by_hash[digest] = target
        return f"![{alt}](images/{target.name})"

    return _IMAGE.sub(replace, markdown)
