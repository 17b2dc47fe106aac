"""The module map of docs/architecture.md, enforced: imports go one way, from the faces
down to the bottom, with no cycle anywhere in the package (imports inside functions
included: deferring an import hides a cycle, it does not remove it)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "newsletter"

# Layers of docs/architecture.md's module map, bottom up: a module may import its own
# layer and those below (within a layer, only without cycles).
BOTTOM, CONFIG, STAGES, WORKFLOWS, FACES = range(5)
LAYER_NAMES = ["bottom", "config", "stages", "workflows", "faces"]
# The send/ modules that run a workflow; the rest of send/ are stages.
SEND_WORKFLOWS = {
    "sending",
    "plan",
    "proofs",
    "status",
    "transactional",
    "campaign",
    "copies",
    "run_summary",
    "schedule",
    "schedule_queue",
    "schedule_cancel",
    "schedule_times",
    "mail_queue",
    "mailbox",
    "subject_phases",
}


def layer(module: str) -> int:
    parts = module.split(".")[1:]
    top = parts[0] if parts else ""
    if module == "newsletter.__main__" or top in ("cli", "preview", "web"):
        return FACES
    if module == "newsletter.render.build" or top in (
        "author",
        "site",
        "reports",
        "ops",
        "automations",
    ):
        return WORKFLOWS
    if top == "send" and len(parts) > 1 and parts[1] in SEND_WORKFLOWS:
        return WORKFLOWS
    if module in ("newsletter.segments.language", "newsletter.segments.lexer"):
        return BOTTOM  # the config checks saved segments with it
    if top in ("render", "send", "store", "segments", "deliverability", "tokens", "languages"):
        return STAGES
    if top == "config":
        return CONFIG
    if module == "newsletter" or top in ("models", "errors", "safe_text"):
        return BOTTOM
    raise AssertionError(f"{module} is not in the module map: add it to docs/architecture.md")


# Within the stages: packages that must not import each other (docs/architecture.md).
FORBIDDEN = {
    "newsletter.render": ("newsletter.send", "newsletter.store", "newsletter.author"),
    "newsletter.deliverability": ("newsletter.send", "newsletter.store"),
    "newsletter.languages": ("newsletter.render", "newsletter.send", "newsletter.store"),
}
# Libraries only one part of the package may import.
ONLY_IN = {
    "click": ("newsletter.cli",),
    "sendgrid": ("newsletter.send.providers.sendgrid",),
    "flask": ("newsletter.web",),
    "dns": ("newsletter.deliverability",),
    "publicsuffixlist": ("newsletter.deliverability",),
    "babel": ("newsletter.languages",),
}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported name, line) for every import in the module, resolved to the most
    specific module of the package it names (``from newsletter.web import links`` is
    newsletter.web.links); other libraries by their top-level name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _resolve(alias.name, known), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (candidate if candidate in known else _resolve(base, known)), node.lineno


def _resolve(name: str, known: set[str]) -> str:
    if not name.startswith("newsletter"):
        return name.split(".")[0]
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def graph() -> dict[str, dict[str, int]]:
    """Each module of the package -> {module of the package it imports: first line}."""
    found = modules()
    known = set(found)
    edges: dict[str, dict[str, int]] = {}
    for name, path in found.items():
        edges[name] = {}
        for target, line in imports(name, path, known):
            if target in known and target != name and not _is_parent(target, name):
                edges[name].setdefault(target, line)
    return edges


def _is_parent(package: str, module: str) -> bool:
    # Importing a submodule runs its package's __init__; that is no import of it.
    return module.startswith(package + ".")


def test_every_import_goes_down_the_module_map() -> None:
    found = modules()
    upward = [
        f"{found[source].relative_to(ROOT)}:{line}: {source} ({LAYER_NAMES[layer(source)]}) "
        f"imports {target} ({LAYER_NAMES[layer(target)]})"
        for source, targets in graph().items()
        for target, line in targets.items()
        if layer(target) > layer(source)
    ]
    assert upward == []


def test_stages_keep_out_of_each_other_where_the_map_says_so() -> None:
    found = modules()
    crossing = [
        f"{found[source].relative_to(ROOT)}:{line}: {source} imports {target}"
        for source, targets in graph().items()
        for target, line in targets.items()
        for package, forbidden in FORBIDDEN.items()
        if _within(source, package) and any(_within(target, f) for f in forbidden)
    ]
    assert crossing == []


def test_libraries_with_one_home_are_imported_only_there() -> None:
    found = modules()
    known = set(found)
    strays = [
        f"{path.relative_to(ROOT)}:{line}: {library}"
        for name, path in found.items()
        for library, line in imports(name, path, known)
        if library in ONLY_IN and not any(_within(name, home) for home in ONLY_IN[library])
    ]
    assert strays == []


def test_the_package_has_no_import_cycle() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert [" -> ".join(cycle) for cycle in cycles] == []
