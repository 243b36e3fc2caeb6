"""Every model family's public API is typed and documented, checked by walking the source (ast).

The rule, for every ``.py`` under ``models/`` (every family, present and future — a new module such
as ``models/workbench/kafka.py`` is covered the moment it lands; only private modules are skipped):

* Public means: a module-level function or class whose name has no leading underscore, a class
  nested in a public class under the same condition, and a method defined directly in a public
  class's body whose name has no leading underscore or is a dunder (``__init__``, ``__len__``, …).
  Definitions under a module- or class-level ``if``/``try`` (``if TYPE_CHECKING:``) count too.
  Private names, methods of private classes, functions nested inside functions and everything in a
  private module or package (a path part starting with ``_``, ``__init__.py`` aside) are exempt.
* Typed: every parameter of a public function or method is annotated — positional-only, keyword-only,
  ``*args`` and ``**kwargs`` included; only the first parameter of a method (``self``/``cls``) is
  exempt, and not for a ``@staticmethod`` — and it has a return annotation. ``__init__`` is no
  exception: it says ``-> None``.
* Documented: every public class, public function and public method has a non-empty docstring,
  properties included, that is more than its own name restated ("Foo method."). Exempt: dunder
  methods (the data model fixes their meaning), property setters and deleters (the getter carries
  the docstring) and ``@overload`` signatures (the implementation carries it; they must still be
  typed).

``python tests/test_public_api.py`` prints the per-family percentages.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"

# Words a docstring may not consist of alone, beyond the name itself: "Foo method.", "The bar."
_FILLER = {"a", "an", "the", "method", "function", "class", "property", "getter", "of", "this"}

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


def _family(py: Path, root: Path = MODELS) -> str:
    parts = py.relative_to(root).parts
    return parts[0] if len(parts) > 1 else root.name


def _is_private_module(py: Path, root: Path) -> bool:
    return any(part.startswith("_") and part != "__init__.py" for part in py.relative_to(root).parts)


def _words(text: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)  # CamelCase -> Camel Case
    return {w.lower() for w in re.findall(r"[A-Za-z0-9]+", spaced)}


def _documented(node: FuncDef | ast.ClassDef) -> bool:
    doc = (ast.get_docstring(node) or "").strip()
    if not doc:
        return False
    return not _words(doc.splitlines()[0]) <= _words(node.name) | _FILLER


def _body(stmts: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements of a module or class body, looking inside ``if``/``try`` blocks."""
    for node in stmts:
        if isinstance(node, ast.If):
            yield from _body(node.body)
            yield from _body(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _body(block)
        else:
            yield node


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
    decorators = _decorators(fn)
    accessor = any(d.endswith((".setter", ".deleter")) for d in decorators)
    overload = any(d in ("overload", "typing.overload") for d in decorators)
    needs_doc = not (overload or (is_method and (_is_dunder(fn.name) or accessor)))
    return Item(family, f"{where}:{fn.lineno} {owner + '.' if owner else ''}{fn.name}",
                "method" if is_method else "function", True, not missing, tuple(missing),
                needs_doc, _documented(fn))


def _class_items(cls: ast.ClassDef, family: str, where: str, prefix: str = "") -> Iterator[Item]:
    qual = prefix + cls.name
    yield Item(family, f"{where}:{cls.lineno} {qual}", "class", False, True, (), True,
               _documented(cls))
    for node in _body(cls.body):
        if isinstance(node, FuncDef) and (not node.name.startswith("_") or _is_dunder(node.name)):
            yield _function_item(node, family, where, qual)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            yield from _class_items(node, family, where, qual + ".")


def public_api(root: Path = MODELS) -> list[Item]:
    """Every public function, method and class under ``root``, judged against the rule."""
    items: list[Item] = []
    for py in sorted(root.rglob("*.py")):
        if _is_private_module(py, root):
            continue
        tree = ast.parse(py.read_text(), filename=str(py))
        family, where = _family(py, root), str(py.relative_to(root.parent))
        for node in _body(tree.body):
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


_SAMPLE = '''
from typing import TYPE_CHECKING, overload

def undocumented(x: int) -> int:
    return x

def untyped(x, *args, k=1, **kw):
    """Sum x and k; a real docstring."""
    def nested(y):  # exempt: nested in a function
        return y
    return x + k

def restated() -> None:
    """Restated function."""

class Box:
    """A box of numbers."""

    def __init__(self, n: int):  # missing -> None; dunder needs no docstring
        self._n = n

    def __len__(self) -> int:
        return self._n

    @property
    def n(self) -> int:  # a property needs its docstring
        return self._n

    @n.setter
    def n(self, value: int) -> None:  # setter exempt from the docstring, not from types
        self._n = value

    @staticmethod
    def make(n) -> "Box":  # a staticmethod's first parameter is a parameter
        """Build a Box of n."""
        return Box(n)

    @classmethod
    def empty(cls) -> "Box":
        """An empty Box."""
        return cls(0)

    @overload
    def get(self, i: int) -> int: ...
    @overload
    def get(self, i: str) -> str: ...
    def get(self, i: int | str) -> int | str:
        """Item i, by position or by name."""
        return i

    def _helper(self, x):  # private
        return x

    class Inner:
        pass

class _Private:
    def open(self, x):
        return x

if TYPE_CHECKING:
    def guarded(x) -> None:
        """Only for type checkers."""
'''


def test_the_walker_applies_the_rule(tmp_path: Path) -> None:
    """The rule on a sample package: which items it finds and how it judges each."""
    root = tmp_path / "models"
    (root / "fam").mkdir(parents=True)
    (root / "fam" / "mod.py").write_text(_SAMPLE)
    (root / "fam" / "_private.py").write_text("def f(x):\n    return x\n")
    (root / "_internal").mkdir()
    (root / "_internal" / "mod.py").write_text("def f(x):\n    return x\n")
    items = {i.where.split(" ", 1)[1]: i for i in public_api(root)}
    assert {i.family for i in items.values()} == {"fam"}
    found = [i.where.split(" ", 1)[1] for i in public_api(root)]
    assert found == ["undocumented", "untyped", "restated", "Box", "Box.__init__", "Box.__len__",
                     "Box.n", "Box.n", "Box.make", "Box.empty", "Box.get", "Box.get", "Box.get",
                     "Box.Inner", "guarded"]
    assert not items["undocumented"].documented and items["undocumented"].typed
    assert items["untyped"].missing == ("x", "k", "*args", "**kw", "return")
    assert not items["restated"].documented
    assert items["Box.__init__"].missing == ("return",) and not items["Box.__init__"].needs_doc
    assert items["Box.__len__"].typed and not items["Box.__len__"].needs_doc
    getter, setter = [i for i in public_api(root) if i.where.endswith(" Box.n")]
    assert getter.needs_doc and not getter.documented and not setter.needs_doc and setter.typed
    assert items["Box.make"].missing == ("n",) and items["Box.empty"].typed
    stubs = [i for i in public_api(root) if i.where.endswith(" Box.get")]
    assert [i.needs_doc for i in stubs] == [False, False, True] and all(i.typed for i in stubs)
    assert not items["Box.Inner"].documented
    assert items["guarded"].missing == ("x",)


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
