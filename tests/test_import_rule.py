"""README "How it is built": who may import whom, checked by reading every module's imports (ast).

A new import that breaks the rule fails here; change the rule in README and in this file together.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("config", "accounts", "core", "knowledge", "sources", "retrieval", "llm", "chat", "training", "health")

# What each app may import from the other apps (a module or package prefix).
MAY_IMPORT = {
    "config": (),  # config.urls, the URL conf, is the one exception: it mounts every app
    "core": ("config", "accounts"),
    "accounts": ("config", "core", "knowledge.policy", "training.policy"),  # the top bar asks the policies
    # the index stage writes BM25 postings and records each chunk's language
    "knowledge": ("config", "core", "accounts", "retrieval.indexing", "retrieval.tokenize"),
    "sources": ("config", "core", "accounts", "knowledge.models", "knowledge.policy", "knowledge.services"),
    "retrieval": ("config", "core", "accounts", "knowledge"),
    "llm": ("config", "retrieval.tokenize", "sources.crypto"),
    "chat": ("config", "core", "accounts", "knowledge", "retrieval", "llm", "sources.crypto"),
    # RAG evaluation asks through the chat pipeline; datasets read chat feedback
    "training": ("config", "core", "accounts", "knowledge", "llm", "retrieval", "chat"),
    "health": ("config", "core", "accounts", "knowledge", "sources.models", "retrieval", "chat", "training.policy_jobs"),
}

# Ingestion's public surface for other apps; stages, sql, tasks, views, forms, uploads are its own.
INGESTION_PUBLIC = ("knowledge.ingestion.selectors", "knowledge.ingestion.services")
INGESTION_LIBRARY = ("archive", "blocks", "chunk", "clean", "detect", "entities", "errors", "extract", "title")
# Inside knowledge.ingestion: which of its modules each may import (the pure library is always allowed).
INGESTION_LAYERS = {
    "sql": (),
    "selectors": (),
    "stages": ("sql", "selectors"),
    "services": ("stages", "sql", "selectors"),
    "tasks": ("services",),
    "uploads": (),
    "forms": (),
    "views": ("forms", "selectors", "services", "uploads"),
    "urls": ("views",),
    "api": ("uploads",),
    "api_urls": ("api",),
}


def _modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path):
    """(imported module, line, at module level?) for every first-party import of a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from package import module` imports the module; `from module import name` the module.
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in APPS:
                yield target, node.lineno, id(node) in top_level


def _under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_apps_import_only_what_the_rule_allows():
    broken = []
    for name, path in MODULES.items():
        app = name.split(".")[0]
        if name == "config.urls":
            continue
        for target, line, _top in _imports(name, path):
            if target.split(".")[0] != app and not _under(target, MAY_IMPORT[app]):
                broken.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not broken, "\n".join(broken)


def test_other_apps_use_only_ingestion_selectors_and_services():
    broken = []
    for name, path in MODULES.items():
        if name.startswith("knowledge") or name == "config.urls":
            continue
        for target, line, _top in _imports(name, path):
            if _under(target, ("knowledge.ingestion",)) and not _under(target, INGESTION_PUBLIC):
                library = target.split(".")[2:3] and target.split(".")[2] in INGESTION_LIBRARY
                if target != "knowledge.ingestion" and not library:
                    broken.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not broken, "\n".join(broken)


def test_ingestion_modules_keep_their_layers():
    broken = []
    for name, path in MODULES.items():
        if not name.startswith("knowledge.ingestion"):
            continue
        own = name.split(".")[2] if name.count(".") >= 2 else "__init__"
        for target, line, _top in _imports(name, path):
            if own in INGESTION_LIBRARY or own == "__init__":
                # The pure library: no database, no other part of the product.
                allowed = target == "knowledge.ingestion" or (
                    _under(target, ("knowledge.ingestion",)) and target.split(".")[2] in INGESTION_LIBRARY
                )
            elif _under(target, ("knowledge.ingestion",)):
                sibling = target.split(".")[2] if target.count(".") >= 2 else "__init__"
                allowed = sibling in INGESTION_LIBRARY or sibling == "__init__" or sibling in INGESTION_LAYERS[own]
            else:
                # The rest of knowledge: models, policy, embedding, selectors; knowledge.services only
                # from uploads (knowledge.services itself queues through ingestion.services).
                allowed = not _under(target, ("knowledge.views", "knowledge.api", "knowledge.urls")) and (
                    not _under(target, ("knowledge.services",)) or own == "uploads"
                )
            if not allowed:
                broken.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not broken, "\n".join(broken)


def test_no_import_inside_a_function_of_the_same_app():
    """An import tucked into a function hides a cycle; apps.py's ready() is the one place for it."""
    broken = []
    for name, path in MODULES.items():
        app = name.split(".")[0]
        if app not in ("knowledge", "sources", "retrieval") or path.name == "apps.py":
            continue
        for target, line, top in _imports(name, path):
            if not top and target.split(".")[0] == app:
                broken.append(f"{path.relative_to(ROOT)}:{line} imports {target} inside a function")
    assert not broken, "\n".join(broken)


def test_module_level_imports_have_no_cycle():
    graph = defaultdict(set)
    for name, path in MODULES.items():
        for target, _line, top in _imports(name, path):
            if top and target in MODULES and target != name:
                graph[name].add(target)
    # Packages' __init__ imports of their own modules are not cycles of the design.
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open" and not nxt.startswith(node) and not node.startswith(nxt + "."):
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [])
    assert not cycles, "\n".join(cycles)


def test_the_rule_sees_imports():
    """The walker itself: it finds a relative import, a package import and a function-level one."""
    services = "knowledge.ingestion.services"
    found = {(t, top) for t, _l, top in _imports(services, MODULES[services])}
    assert ("knowledge.ingestion.stages", True) in found and ("knowledge.embedding", True) in found
    inner = {(t, top) for t, _l, top in _imports("knowledge.apps", MODULES["knowledge.apps"])}
    assert ("knowledge.ingestion.tasks", False) in inner
