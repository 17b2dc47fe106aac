"""Refresh the message catalogs: extract, merge into every language's .po, compile.

    .venv/bin/python scripts/catalogs.py          # after changing a message
    .venv/bin/python scripts/catalogs.py --check  # exit 1 if a .mo is out of date

Extraction follows babel.cfg; the template is newsletter/languages/newsletter.pot.
A message that changed comes back in each .po untranslated (or fuzzy): translate it
there, then run this again to compile. tests/languages/ fails until every shipped
catalog is complete and every .mo matches its .po.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ROOT / "newsletter" / "languages"
POT = LANGUAGES / "newsletter.pot"
KEYWORDS = ["-k", "N_", "-k", "pgettext:1c,2"]


def compiled(po: Path) -> bytes:
    """The .mo bytes of a .po, as the package ships them (fuzzy entries left out)."""
    with po.open("rb") as file:
        catalog = read_po(file)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def _messages(pot: str) -> str:
    """The template without its header (which holds the extraction time)."""
    return pot.partition('msgstr ""\n"')[2].partition("\n\n")[2]


def po_files() -> list[Path]:
    return sorted(LANGUAGES.glob("locale/*/LC_MESSAGES/newsletter.po"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the .mo files")
    args = parser.parse_args()
    if args.check:
        stale = [po for po in po_files() if po.with_suffix(".mo").read_bytes() != compiled(po)]
        for po in stale:
            print(f"{po.relative_to(ROOT)}: its .mo is out of date; run scripts/catalogs.py")
        return 1 if stale else 0
    pybabel = [sys.executable, "-m", "babel.messages.frontend"]
    before = POT.read_text(encoding="utf-8") if POT.exists() else ""
    subprocess.run(
        [*pybabel, "extract", "-F", "babel.cfg", *KEYWORDS, "--no-location", "--sort-output",
         "--project", "newsletter", "--no-wrap", "-o", str(POT), "."],
        cwd=ROOT, check=True,
    )  # fmt: skip
    if _messages(POT.read_text(encoding="utf-8")) == _messages(before):
        POT.write_text(before, encoding="utf-8")  # same messages: keep its date, no churn
    for po in po_files():
        subprocess.run(
            [*pybabel, "update", "-i", str(POT), "-o", str(po), "--no-wrap",
             "--ignore-obsolete", "-l", po.parent.parent.name],
            cwd=ROOT, check=True,
        )  # fmt: skip
        po.with_suffix(".mo").write_bytes(compiled(po))
    return 0


if __name__ == "__main__":
    sys.exit(main())
