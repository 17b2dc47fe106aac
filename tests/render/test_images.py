"""The image pipeline: local images resized to the width they are shown at (×2),
recompressed, content-hashed, cached; `check` reports images too big to send."""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import newsletter.render.compile
import newsletter.render.images
from newsletter.cli import cli
from newsletter.config import Config
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from tests.render.test_cli_render import write_issue

OWN = "title: Garden notes\npreheader: What grew this month.\n"


def noise_image(path: Path, size: tuple[int, int], image_format: str, **options: object) -> int:
    """A photo-like worst case: random pixels do not compress."""
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    path.write_bytes(buffer.getvalue())
    return len(buffer.getvalue())


@pytest.fixture
def camera_photo(project: Path) -> Path:
    path = project / "issues" / "images" / "allotment.jpg"
    assert noise_image(path, (3000, 2000), "JPEG", quality=90) > 1024 * 1024
    return path


def test_a_big_photo_is_resized_for_the_width_it_is_shown_at(
    runner: CliRunner, project: Path, camera_photo: Path
) -> None:
    issue = write_issue(project, OWN, "Hello.\n\n![Our allotment in June](images/allotment.jpg)\n")
    result = runner.invoke(cli, ["build", issue, "--out", "out"])
    assert result.exit_code == 0, result.output

    html = (project / "out" / "test" / "email.html").read_text()
    name = re.search(r'/assets/(allotment-[0-9a-f]{12}\.jpg)"', html)
    assert name is not None
    sent = project / "out" / "assets" / name[1]
    with Image.open(sent) as image:
        assert image.size == (1072, 715)  # 536 CSS px in the theme's column, twice
    assert sent.stat().st_size < camera_photo.stat().st_size / 4

    lines = runner.invoke(cli, ["check", issue]).output.splitlines()
    size = camera_photo.stat().st_size / 1024 / 1024
    assert any(
        line.startswith(f"{issue}: warning: image issues/images/allotment.jpg is {size:.1f} MB")
        for line in lines
    ), lines


def test_an_unchanged_image_is_not_encoded_again(
    project: Path, config: Config, camera_photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project / write_issue(project, OWN, "Hi.\n\n![Allotment](images/allotment.jpg)\n")
    first = compile_issue(read_issue(path), config)

    def encode_again(*args: object) -> object:
        raise AssertionError("an unchanged image was encoded again")

    monkeypatch.setattr(newsletter.render.images, "_encode", encode_again)
    newsletter.render.compile._pipeline.cache_clear()  # a new process: the index is read from disk
    again = compile_issue(read_issue(path), config)
    assert again.html == first.html


def test_remote_images_are_left_alone(project: Path, config: Config) -> None:
    path = project / write_issue(project, OWN, "![A map](https://maps.example/plot.png)\n")
    compiled = compile_issue(read_issue(path), config)
    assert 'src="https://maps.example/plot.png"' in compiled.html
    assert [image.source.name for image in compiled.images] == ["logo.png"]  # the theme's


def bomb_png(path: Path, width: int = 40_000, height: int = 40_000) -> None:
    """A valid PNG header declaring ``width``×``height`` pixels, with almost no data:
    decoded, it would take gigabytes (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("command", ["check", "build"])
def test_a_decompression_bomb_is_one_line_naming_the_image(
    runner: CliRunner, project: Path, command: str
) -> None:
    bomb = project / "issues" / "images" / "bomb.png"
    bomb_png(bomb)
    assert len(bomb.read_bytes()) < 100
    issue = write_issue(project, OWN, "Hello.\n\n![A chart](images/bomb.png)\n")

    result = runner.invoke(cli, [command, issue])

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.count("bomb.png") == 1, result.output
    [line] = [line for line in result.output.splitlines() if "bomb.png" in line]
    assert "declares too many pixels to decode safely" in line


def test_an_image_too_big_even_after_resizing_is_an_error(runner: CliRunner, project: Path) -> None:
    noise_image(project / "issues" / "images" / "chart.png", (1100, 1700), "PNG")
    issue = write_issue(project, OWN, "Hello.\n\n![The harvest by month](images/chart.png)\n")
    result = runner.invoke(cli, ["check", issue])
    assert result.exit_code == 1
    assert any(
        re.match(
            rf"{issue}: error: image issues/images/chart\.png \(as sent: 5\.\d MB, 1072×1657\) "
            "is too big to send even after resizing",
            line,
        )
        for line in result.output.splitlines()
    ), result.output


def test_where_build_cannot_be_written_the_original_images_are_shown(
    project: Path, config: Config
) -> None:
    # A project copy where build/assets/ cannot be made (the web app's, read-only): here
    # a file named build, which stops even root.
    (project / "build").write_text("not a folder")
    path = project / write_issue(project, OWN, "Hi.\n\n![Logo](images/logo.png)\n")
    compiled = compile_issue(read_issue(path), config)
    assert 'src="https://news.breastfeedingworld.example/assets/issues/images/logo.png"' in (
        compiled.html
    )


def small_photo(project: Path) -> None:
    noise_image(project / "issues" / "images" / "crocks.jpg", (400, 300), "JPEG")


def test_an_image_on_the_line_right_after_text_is_an_image_like_its_own_paragraph(
    runner: CliRunner, project: Path
) -> None:
    small_photo(project)
    body = "Our crocks came through the frost.\n![Three crocks in the snow](images/crocks.jpg)\n"
    issue = write_issue(project, OWN, body)

    checked = runner.invoke(cli, ["check", issue])

    assert "not an absolute http(s) URL" not in checked.output
    assert checked.exit_code == 0, checked.output
    assert runner.invoke(cli, ["build", issue, "--out", "out"]).exit_code == 0
    html = (project / "out" / "test" / "email.html").read_text()
    assert re.search(r'src="[^"]*/assets/crocks-[0-9a-f]{12}\.jpg"', html)
    assert "Our crocks came through the frost." in html
    text = (project / "out" / "test" / "email.txt").read_text()
    assert text.index("Our crocks came through the frost.") < text.index("Three crocks in the snow")


def test_text_on_both_sides_of_an_image_line_stays_in_order(project: Path, config: Config) -> None:
    small_photo(project)
    body = "Before the photo.\n![Crocks](images/crocks.jpg)\nAfter the photo.\n"
    issue = read_issue(project / write_issue(project, OWN, body))

    kinds = [type(block).__name__ for block in issue.blocks]

    assert kinds == ["TextBlock", "ImageBlock", "TextBlock"]
    html = compile_issue(issue, config).html
    assert html.index("Before the photo.") < html.index("crocks-") < html.index("After the photo.")


def test_an_image_inside_a_sentence_says_exactly_what_to_change(
    runner: CliRunner, project: Path
) -> None:
    small_photo(project)
    issue = write_issue(project, OWN, "Look at ![crocks](images/crocks.jpg) in the snow.\n")

    checked = runner.invoke(cli, ["check", issue])

    assert checked.exit_code == 1
    assert (
        f"{issue}:5: error: image 'images/crocks.jpg' sits inside a sentence, where it cannot "
        "be resized or sent: put ![crocks](images/crocks.jpg) on a line of its own"
    ) in checked.output, checked.output
    assert "not an absolute http(s) URL" not in checked.output


def test_an_image_in_a_list_says_to_take_it_out_of_the_list(
    runner: CliRunner, project: Path
) -> None:
    small_photo(project)
    body = "What we planted:\n\n- crocks\n  ![Crocks](images/crocks.jpg)\n- snowdrops\n"
    issue = write_issue(project, OWN, body)

    checked = runner.invoke(cli, ["check", issue])

    assert checked.exit_code == 1
    assert (
        f"{issue}:8: error: image 'images/crocks.jpg' is inside a list or a quote, where it "
        "cannot be resized or sent: put ![Crocks](images/crocks.jpg) in a paragraph of its "
        "own, outside it"
    ) in checked.output, checked.output
    assert "not an absolute http(s) URL" not in checked.output
