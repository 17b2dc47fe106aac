"""The image pipeline: each local image resized to the width it is shown at (twice that,
for high-density screens), recompressed, and written under a content-hashed name.

The processed files go to ``build/assets/`` in the project, ready to upload to
``assets_url`` (the web app and the preview serve them from there too). Processing is
cached twice over, so an unchanged image costs a ``stat`` per build: by the source's
path, size and modification time, and by its content hash, width and pipeline version
(an image restored from elsewhere is not re-encoded either). Pillow is imported only
when an image has to be encoded.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

from newsletter.errors import IssueFileError
from newsletter.models import ProcessedImage

PIPELINE_VERSION = 1  # bump when the encoding changes: every image is made again
DENSITY = 2  # pixels per CSS pixel on high-density screens
JPEG_QUALITY = 82
# Formats re-encoded; others (GIF: animation, SVG) are copied under a hashed name.
_ENCODED = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".jpg"}


PROCESSED_FOLDER = "build/assets"


def asset_file(root: Path, path: str) -> Path | None:
    """The file that ``/assets/<path>`` names in the project at ``root``: the resized copy
    in build/assets/ first, else the file itself. None for anything that is not a plain
    file inside the project, and for any odd path (``..``, a dot-file, a NUL byte, a name
    too long for the file system): a stranger's URL must end in a 404, not an exception.
    """
    parts = Path(path).parts
    if not parts or Path(path).is_absolute() or "\x00" in path or "\\" in path:
        return None
    if any(part.startswith(".") for part in parts):
        return None
    for folder in (root / PROCESSED_FOLDER, root):
        try:
            candidate = (folder / path).resolve()
            if candidate.is_file() and candidate.is_relative_to(folder.resolve()):
                return candidate
        except (OSError, ValueError):
            return None
    return None


class OutputNotWritable(IssueFileError):
    """build/assets/ cannot be written (a read-only deployment of the web app)."""


class ImagePipeline:
    def __init__(self, root: Path) -> None:
        self.output_dir = root / PROCESSED_FOLDER
        self.index_path = root / "build" / ".cache" / "images.json"
        self._index: dict[str, Any] | None = None
        self._changed = False

    # The index: "stat:<path>:<size>:<mtime>" -> source hash, and
    # "<hash>:<width>:<version>" -> the processed image's name, size and dimensions.

    @property
    def index(self) -> dict[str, Any]:
        if self._index is None:
            try:
                loaded = json.loads(self.index_path.read_text(encoding="utf-8"))
                self._index = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._index = {}
        return self._index

    def process(self, source: Path, display_width: int) -> ProcessedImage:
        """The image as shown ``display_width`` CSS pixels wide, made if not cached."""
        stat = source.stat()
        stat_key = f"stat:{source}:{stat.st_size}:{stat.st_mtime_ns}"
        digest = self.index.get(stat_key)
        data: bytes | None = None
        if digest is None:
            data = source.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            self.index[stat_key] = digest
            self._changed = True
        key = f"{digest}:{display_width}:{PIPELINE_VERSION}"
        entry = self.index.get(key)
        if entry is None or not (self.output_dir / entry["name"]).is_file():
            if data is None:
                data = source.read_bytes()
            entry = self._make(source, data, display_width)
            self.index[key] = entry
            self._changed = True
        return ProcessedImage(
            source=source,
            name=entry["name"],
            path=self.output_dir / entry["name"],
            width=entry["width"],
            height=entry["height"],
            source_bytes=stat.st_size,
            output_bytes=entry["bytes"],
        )

    def save(self) -> None:
        if not self._changed:
            return
        try:
            self.index_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.index_path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self.index, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self.index_path)
            self._changed = False
        except OSError:
            pass  # the images are made again next time: slower, not wrong

    def _make(self, source: Path, data: bytes, display_width: int) -> dict[str, Any]:
        encoded, suffix, width, height = _encode(source, data, display_width * DENSITY)
        name = f"{_safe_stem(source)}-{hashlib.sha256(encoded).hexdigest()[:12]}{suffix}"
        target = self.output_dir / name
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                temporary = target.with_name(f".{name}.tmp")
                temporary.write_bytes(encoded)
                os.replace(temporary, target)
        except OSError as error:
            raise OutputNotWritable(
                f"{source}: cannot write the resized image to {self.output_dir} "
                f"({error.strerror}); check that the folder is writable"
            ) from None
        return {"name": name, "width": width, "height": height, "bytes": len(encoded)}


def _encode(source: Path, data: bytes, max_width: int) -> tuple[bytes, str, int, int]:
    """(bytes, suffix, width, height) of the image at most ``max_width`` pixels wide."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    image: Image.Image
    try:
        opened = Image.open(io.BytesIO(data))
        image_format = opened.format or ""
        width, height = opened.size
        image = opened
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(source, Image.MAX_IMAGE_PIXELS or 0) from None
    except (UnidentifiedImageError, OSError):
        # Not a raster image Pillow knows (an SVG, say): shown as it is.
        return data, source.suffix.lower(), 0, 0
    if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
        # Pillow only warns up to twice its limit, and would decode it all the same.
        raise _too_many_pixels(source, Image.MAX_IMAGE_PIXELS)
    if image_format not in _ENCODED or getattr(opened, "n_frames", 1) > 1:
        return data, source.suffix.lower(), width, height
    try:
        image = ImageOps.exif_transpose(image)
        if image.width > max_width:
            ratio = max_width / image.width
            image = image.resize(
                (max_width, max(1, round(image.height * ratio))), Image.Resampling.LANCZOS
            )
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        output = io.BytesIO()
        if image_format == "PNG" or (image_format == "WEBP" and has_alpha):
            suffix = ".png"
            image.save(output, "PNG", optimize=True)
        else:
            suffix = ".jpg"
            image.convert("RGB").save(
                output, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True
            )
    except (OSError, ValueError) as error:
        raise IssueFileError(f"{source}: cannot read the image ({error}); save it again") from None
    encoded = output.getvalue()
    # Recompressing (even resizing) a small, simple image can make it bigger: a smaller
    # original in the same format is kept, and the mail client scales it.
    if len(encoded) >= len(data) and suffix == _ENCODED.get(image_format):
        return data, suffix, width, height
    return encoded, suffix, image.width, image.height


def _too_many_pixels(source: Path, limit: int) -> IssueFileError:
    """A few bytes can declare gigapixels (a decompression bomb): decoding them would take
    gigabytes, so such an image is refused before it is decoded."""
    return IssueFileError(
        f"{source}: the image declares too many pixels to decode safely (more than "
        f"{limit:,}); save it again at the size it is shown at"
    )


def _safe_stem(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in path.stem.lower())
    return stem.strip("-")[:60] or "image"


def copy_assets(images: list[ProcessedImage], out_dir: Path) -> list[Path]:
    """Copy processed images into ``out_dir`` (a ``build --out`` elsewhere than build/)."""
    copied = []
    for image in images:
        target = out_dir / image.name
        if target.resolve() != image.path.resolve():
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(image.path, target)
        copied.append(target)
    return copied
