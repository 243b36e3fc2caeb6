"""Export a history as operations in the shape Porcupine's checker takes, and read them back.

Porcupine (Athalye, github.com/anishathalye/porcupine, ``model.go``) checks a list of
``Operation{ClientId, Input, Call, Output, Return}``: one record per call with its return, the
interval ``[Call, Return]`` *closed* (operations whose ends touch are concurrent). This module writes
one JSON document a small Go program can decode into that list::

    {"format": "splitbrain-porcupine/1", "model": "kv", "ops": [
        {"client": 0, "process": 0, "call": 0, "return": 3, "type": "ok",
         "f": "append", "key": 0, "value": "<0>", "output": "<0>"}, ...]}

``call`` and ``return`` are the positions of the invocation and completion events in the history
(integers, all distinct), so the closed intervals order exactly as the history's events do and no
two ends touch. An operation never completed, or completed ``info`` (indeterminate, Jepsen's
convention), gets ``return`` = 2**63 - 1, Porcupine's encoding of a call that may take effect at any
later time (its README, "crashed" operations). ``client`` is the process's zero-based index in
order of first appearance (Porcupine's ClientId); ``process`` keeps the original id. ``fail``
operations are exported too, with their type, so the export is lossless; a Porcupine model should
skip them (they did not happen). ``output`` is the completion's value (``null`` if none).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import History
from .ops import Op, as_history, completions, pair_ops

FORMAT = "splitbrain-porcupine/1"
NEVER = 2**63 - 1  # Porcupine's Return for an operation that may take effect at any later time


def _plain(v: Any) -> Any:
    return [_plain(x) for x in v] if isinstance(v, (list, tuple)) else v


def to_porcupine(history: History | Iterable[dict] | str | Path, model: str) -> dict:
    """The history as a Porcupine-shaped document (module docstring). ``model`` names the
    sequential specification the reader should use (e.g. ``"kv"``, ``"queue"``)."""
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty model name, got {model!r}")
    h = as_history(history)
    ret = completions(h)  # the event position of each completion
    clients: dict[Any, int] = {}
    ops = []
    for op in pair_ops(h):
        c = clients.setdefault(op.process, len(clients))
        end = ret[op.index] if op.type in ("ok", "fail") else NEVER
        ops.append({"client": c, "process": op.process, "call": op.index, "return": end, "type": op.type,
                    "f": op.f, "key": _plain(op.key), "value": _plain(op.value), "output": _plain(op.result)})
    return {"format": FORMAT, "model": model, "ops": ops}


def save_porcupine(history: History | Iterable[dict] | str | Path, model: str, path: str | Path) -> Path:
    """Write ``to_porcupine(history, model)`` to ``path`` as JSON; returns the path."""
    path = Path(path)
    path.write_text(json.dumps(to_porcupine(history, model), separators=(",", ":")))
    return path


def from_porcupine(doc: dict | str | Path) -> list[Op]:
    """The operations of an exported document (or its file), as ``pair_ops`` gives them; times are
    the event positions. Raises ``ValueError`` on a document of another format."""
    if not isinstance(doc, dict):
        doc = json.loads(Path(doc).read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"doc format must be {FORMAT!r}, got {doc.get('format')!r}")

    def frozen(v: Any) -> Any:
        return tuple(frozen(x) for x in v) if isinstance(v, list) else v

    out = []
    for o in doc["ops"]:
        ct = None if o["return"] == NEVER and o["type"] == "info" else float(o["return"])
        out.append(Op(o["call"], o["process"], o["f"], frozen(o["key"]), frozen(o["value"]), frozen(o["output"]),
                      o["type"], float(o["call"]), ct))
    return out
