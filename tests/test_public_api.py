"""Every model family's public API is typed and documented, checked by walking the source (ast).

The rule, for every ``.py`` under ``models/`` (every family, present and future; nothing excluded):

* Public means: a module-level function or class whose name has no leading underscore, a class
  nested in a public class under the same condition, and a method defined directly in a public
  class's body whose name has no leading underscore or is a dunder (``__init__``, ``__len__``, …).
  Private names, methods of private classes and functions nested inside functions are exempt.
* Typed: every parameter of a public function or method is annotated — positional-only, keyword-only,
  ``*args`` and ``**kwargs`` included; only the first parameter of a method (``self``/``cls``) is
  exempt, and not for a ``@staticmethod`` — and it has a return annotation. ``__init__`` is no
  exception: it says ``-> None``.
* Documented: every public class, public function and public method has a docstring, properties
  included. Exempt: dunder methods (the data model fixes their meaning) and property setters and
  deleters (the getter carries the docstring).

``python tests/test_public_api.py`` prints the per-family percentages.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"

FuncDef = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Item:
    """One public function, method or class and whether it meets the rule."""

    family: str
    where: str  # "models/x/y.py:12 Class.method"
    kind: str  # "function" | "method" | "class"
    needs_types: bool
    typed: bool
    missing: tuple[str, ...]
    needs_doc: bool
    documented: bool


def _family(py: Path) -> str:
    parts = py.relative_to(MODELS).parts
    return parts[0] if len(parts) > 1 else "models"


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


def _decorators(fn: FuncDef) -> list[str]:
    return [ast.unparse(d) for d in fn.decorator_list]


def _missing_annotations(fn: FuncDef, is_method: bool) -> list[str]:
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    if is_method and "staticmethod" not in _decorators(fn):
        positional = positional[1:]  # self / cls
    params = [*positional, *a.kwonlyargs]
    missing = [p.arg for p in params if p.annotation is None]
    if a.vararg is not None and a.vararg.annotation is None:
        missing.append("*" + a.vararg.arg)
    if a.kwarg is not None and a.kwarg.annotation is None:
        missing.append("**" + a.kwarg.arg)
    if fn.returns is None:
        missing.append("return")
    return missing


def _function_item(fn: FuncDef, family: str, where: str, owner: str | None) -> Item:
    is_method = owner is not None
    missing = _missing_annotations(fn, is_method)
    accessor = any(d.endswith((".setter", ".deleter")) for d in _decorators(fn))
    needs_doc = not (is_method and (_is_dunder(fn.name) or accessor))
    return Item(family, f"{where}:{fn.lineno} {owner + '.' if owner else ''}{fn.name}",
                "method" if is_method else "function", True, not missing, tuple(missing),
                needs_doc, ast.get_docstring(fn) is not None)


def _class_items(cls: ast.ClassDef, family: str, where: str, prefix: str = "") -> Iterator[Item]:
    qual = prefix + cls.name
    yield Item(family, f"{where}:{cls.lineno} {qual}", "class", False, True, (), True,
               ast.get_docstring(cls) is not None)
    for node in cls.body:
        if isinstance(node, FuncDef) and (not node.name.startswith("_") or _is_dunder(node.name)):
            yield _function_item(node, family, where, qual)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            yield from _class_items(node, family, where, qual + ".")


def public_api(root: Path = MODELS) -> list[Item]:
    """Every public function, method and class under ``root``, judged against the rule."""
    items: list[Item] = []
    for py in sorted(root.rglob("*.py")):
        tree = ast.parse(py.read_text(), filename=str(py))
        family, where = _family(py), str(py.relative_to(ROOT))
        for node in tree.body:
            if isinstance(node, FuncDef) and not node.name.startswith("_"):
                items.append(_function_item(node, family, where, None))
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                items.extend(_class_items(node, family, where))
    return items


def coverage_table(items: list[Item]) -> str:
    """Per family: fully annotated functions/methods and documented classes/functions/methods."""
    by: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by[it.family].append(it)
    lines = [f"{'family':<14}{'annotated':>20}{'documented':>20}"]
    for fam in sorted(by):
        typ = [i for i in by[fam] if i.needs_types]
        doc = [i for i in by[fam] if i.needs_doc]
        nt, nd = sum(i.typed for i in typ), sum(i.documented for i in doc)
        lines.append(f"{fam:<14}{f'{nt}/{len(typ)} {100 * nt / max(len(typ), 1):5.1f}%':>20}"
                     f"{f'{nd}/{len(doc)} {100 * nd / max(len(doc), 1):5.1f}%':>20}")
    return "\n".join(lines)


def test_the_walker_sees_every_family():
    families = {_family(p) for p in MODELS.rglob("*.py")}
    assert families >= {"resilience", "services", "replication", "messaging", "transactions",
                        "coordination", "edge"}
    assert {i.family for i in public_api()} >= families - {"models"}


def test_every_public_function_and_method_is_fully_annotated():
    items = public_api()
    bad = [f"{i.where}: missing {', '.join(i.missing)}" for i in items if i.needs_types and not i.typed]
    assert not bad, coverage_table(items) + f"\n\n{len(bad)} not fully annotated:\n" + "\n".join(bad)


def test_every_public_class_function_and_method_has_a_docstring():
    items = public_api()
    bad = [f"{i.where} ({i.kind})" for i in items if i.needs_doc and not i.documented]
    assert not bad, coverage_table(items) + f"\n\n{len(bad)} without a docstring:\n" + "\n".join(bad)


if __name__ == "__main__":
    print(coverage_table(public_api()))
