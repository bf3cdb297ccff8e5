"""Demo data for `make run`: each app contributes a loader, run in order. Idempotent."""

from importlib import import_module

LOADERS = ["accounts.demo", "knowledge.demo"]


def load_all() -> dict[str, dict]:
    return {name: import_module(name).load() for name in LOADERS}
