"""Every import the code makes inside a function (to load something heavy or optional only when it
is used) names a module and attributes that exist. Such an import runs only on the path that needs
it, so a module moved or renamed breaks it silently until that path runs in production: a worker
with a treasury keypair once failed to start because its log redaction imported a module that had
moved."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "bots", "workers", "cli")
OPTIONAL = {"onnxruntime", "torch", "sentence_transformers", "uvloop"}  # may be absent by design


def _deferred_imports() -> list[tuple[str, int, str, tuple[str, ...]]]:
    """(file, line, module, names) for each import statement nested in a function."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            module_name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for func in ast.walk(tree):
                if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(func):
                    where = str(path.relative_to(ROOT))
                    if isinstance(node, ast.Import):
                        for alias in node.names:
                            found.append((where, node.lineno, alias.name, ()))
                    elif isinstance(node, ast.ImportFrom):
                        base = node.module or ""
                        if node.level:
                            parent = module_name.rsplit(".", node.level)[0]
                            if path.name == "__init__.py" and node.level == 1:
                                parent = module_name.removesuffix(".__init__")
                            base = f"{parent}.{base}" if base else parent
                        names = tuple(a.name for a in node.names if a.name != "*")
                        found.append((where, node.lineno, base, names))
    return found


DEFERRED = _deferred_imports()


def test_there_are_deferred_imports_to_check():
    print(f"{len(DEFERRED)} imports inside functions checked")
    assert len(DEFERRED) > 10


@pytest.mark.parametrize(
    "where,line,module,names", DEFERRED, ids=[f"{w}:{n}" for w, n, _, _ in DEFERRED]
)
def test_a_deferred_import_names_what_exists(where, line, module, names):
    if module.split(".")[0] in OPTIONAL and importlib.util.find_spec(module.split(".")[0]) is None:
        pytest.skip(f"{module} is optional and not installed")
    assert importlib.util.find_spec(module) is not None, f"{where}:{line}: no module {module}"
    if not names:
        return
    loaded = importlib.import_module(module)
    for name in names:
        if hasattr(loaded, name):
            continue
        submodule = f"{module}.{name}"
        assert importlib.util.find_spec(submodule) is not None, (
            f"{where}:{line}: {module} has no {name}"
        )
