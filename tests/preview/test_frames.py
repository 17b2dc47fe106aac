"""The copy of the email that the frames show: colour scheme pinned, links in new tabs."""

from __future__ import annotations

from newsletter.preview.frames import force_color_scheme, frame_document

EMAIL = """<!doctype html><html><head>
<meta name="color-scheme" content="light dark">
<meta name="supported-color-schemes" content="light dark">
<style>
  @media screen and (prefers-color-scheme: dark) { .card { background: #111 } }
  @media (PREFERS-COLOR-SCHEME:light) { .card { background: #fff } }
</style></head>
<body><p>Write @media (prefers-color-scheme: dark) in your CSS.</p></body></html>"""


def test_the_dark_copy_always_matches_dark_and_never_light() -> None:
    dark = force_color_scheme(EMAIL, "dark")

    assert "@media screen and (min-width: 0px) { .card { background: #111 } }" in dark
    assert "@media (max-width: 0px) { .card { background: #fff } }" in dark
    assert dark.count('<meta name="color-scheme" content="dark">') == 2


def test_the_light_copy_never_matches_dark() -> None:
    light = force_color_scheme(EMAIL, "light")

    assert "@media screen and (max-width: 0px) { .card { background: #111 } }" in light
    assert "@media (min-width: 0px) { .card { background: #fff } }" in light
    assert 'content="light dark"' not in light


def test_text_outside_style_blocks_is_left_alone() -> None:
    for scheme in ("light", "dark"):
        copy = force_color_scheme(EMAIL, scheme)
        assert "<p>Write @media (prefers-color-scheme: dark) in your CSS.</p>" in copy


def test_links_open_in_a_new_tab() -> None:
    assert '<head><base target="_blank">\n<meta' in frame_document(EMAIL, "light")
    assert frame_document("<p>no head</p>", "light") == '<base target="_blank"><p>no head</p>'
