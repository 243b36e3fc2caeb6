"""Verdicts for the notebooks' predict-then-run exercises.

An exercise is four cells of a notebook's source ``notebooks/NN_name.py`` (jupytext's percent
format): the question (``### Exercise n · title``); an answer cell the learner edits
(``prediction = None`` as shipped, or a policy to tune); a cell that runs the simulation and
compares it with the closed form where one exists (:func:`agrees`); and a check cell that
compares the learner's answer with the measurement (:func:`check_number`, :func:`check_choice`)
or with a target (:func:`check_targets`). The answer cell declares the exercise on its marker line::

    # %% tags=["answer"] splitbrain={"exercise": 1, "reference": "prediction = 0.25", "wrong": "prediction = 0.5"}
    prediction = None   # <- your answer
    # %% tags=["run"]
    ...
    # %% tags=["check"]
    check_number(prediction, closed_form, tol=0.02, why="...")

``reference`` replaces the answer cell when CI and the HTML course execute the notebook; ``wrong``
must be refused. A policy exercise adds ``"rerun": true`` (the run cell uses the answer, so the wrong
answer is judged after rerunning it) and tags its check ``["check", "raises-exception"]`` (it is
shipped missing its target; Jupyter's tag lets "Run all" go on).

A wrong answer raises :class:`NotQuite` — an ``AssertionError`` whose message explains the
reasoning — so a notebook run stops there, like a failing test. A missing prediction
(``None``) prints a reminder and does not raise, so "Run all" still shows every measurement.
A simulation that disagrees with its own closed form raises a plain ``AssertionError``
("please report a bug"): that is the model's failure, not the learner's. The test suite runs
every exercise with its reference answer (which must pass) and with a wrong answer (which
must raise :class:`NotQuite`), so a broken exercise fails CI.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

MISSING = ("No prediction yet: write yours in the cell above (replace None), run it, then run this cell "
           "again to see how close you were.")

_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}


class NotQuite(AssertionError):
    """The learner's answer is off; the message says why."""


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def agrees(measured: float, expected: float, tol: float, what: str) -> None:
    """Assert the simulation matches its closed form within ``tol`` (else it is a bug, not a lesson)."""
    if not (math.isfinite(measured) and abs(measured - expected) <= tol):
        raise AssertionError(f"the simulation measured {_fmt(measured)} but {what} gives {_fmt(expected)} "
                             f"(tolerance {_fmt(tol)}): please report a bug")


def check_number(prediction: float | None, answer: float, *, tol: float, why: str, unit: str = "") -> None:
    """Is ``prediction`` within ``tol`` of ``answer``? Prints the verdict; raises :class:`NotQuite` if not."""
    if prediction is None:
        print(MISSING)
        return
    if isinstance(prediction, bool) or not isinstance(prediction, (int, float)) or not math.isfinite(prediction):
        raise NotQuite(f"write your prediction as a number, got {prediction!r}")
    u = f" {unit}" if unit else ""
    if abs(prediction - answer) > tol:
        raise NotQuite(f"not quite: you predicted {_fmt(prediction)}{u}, the answer is {_fmt(answer)}{u} "
                       f"(within ±{_fmt(tol)}{u} counts). {why}")
    print(f"✓ right: you predicted {_fmt(prediction)}{u}, the answer is {_fmt(answer)}{u}. {why}")


def check_choice(prediction: str | None, answer: str, *, choices: Sequence[str], why: str) -> None:
    """Is the chosen option (a key of ``choices``, e.g. ``"b"``) the answer? Raises :class:`NotQuite` if not."""
    if prediction is None:
        print(MISSING)
        return
    key = str(prediction).strip().lower()
    keys = [str(c).lower() for c in choices]
    if key not in keys:
        raise NotQuite(f"choose one of {', '.join(map(repr, choices))}, got {prediction!r}")
    if key != answer.lower():
        raise NotQuite(f"not quite: you chose {prediction!r}, the answer is {answer!r}. {why}")
    print(f"✓ right: {answer!r}. {why}")


def check_targets(targets: Sequence[tuple[str, float, str, float]], *, hint: str) -> None:
    """Every ``(name, value, op, bound)`` must hold (``op`` one of ``<= < >= > ==``).

    Prints one line per target; raises :class:`NotQuite` naming the missed ones and the hint.
    """
    missed = []
    for name, value, op, bound in targets:
        if op not in _OPS:
            raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
        ok = math.isfinite(value) and _OPS[op](value, bound)
        print(f"{'✓' if ok else '✗'} {name} = {_fmt(value)} (target {op} {_fmt(bound)})")
        if not ok:
            missed.append(f"{name} = {_fmt(value)}, need {op} {_fmt(bound)}")
    if missed:
        raise NotQuite("target missed: " + "; ".join(missed) + f". {hint}")
    print("✓ every target met.")


# --- executing a notebook's exercises (the test suite and scripts/build_course.py) ----------------------

def cell_tags(cell: Any) -> list[str]:
    """A notebook cell's tags (``answer``, ``run``, ``check`` mark an exercise's cells)."""
    return cell.metadata.get("tags", [])


def exercises(nb: Any) -> list[dict]:
    """Each exercise of an nbformat notebook: its answer cell's ``splitbrain`` metadata (``exercise``,
    ``reference``, ``wrong``, ``rerun``) plus the sources of its ``run`` cells and its ``check`` cell."""
    out: list[dict] = []
    cur: dict | None = None
    for c in nb.cells:
        if "answer" in cell_tags(c):
            cur = dict({"rerun": False}, **c.metadata["splitbrain"], run=[], check=None)
            out.append(cur)
        elif cur is not None and "run" in cell_tags(c):
            cur["run"].append(c.source)
        elif cur is not None and "check" in cell_tags(c):
            cur["check"], cur = c.source, None
    return out


def wrong_answer_probe(ex: dict) -> str:
    """A cell judging ``ex``'s wrong answer in a copy of the namespace (the notebook's state is untouched):
    it must raise :class:`NotQuite`; if the check accepts it, the cell fails."""
    rerun = "".join(f"exec({src!r}, _ns)\n" for src in ex["run"]) if ex["rerun"] else ""
    complaint = f"exercise {ex['exercise']} accepted the wrong answer {ex['wrong']}"
    return (f"from simulator.runner.teach import NotQuite as _NotQuite\n_ns = dict(globals())\n"
            f"exec({ex['wrong']!r}, _ns)\n{rerun}"
            f"try:\n    exec({ex['check']!r}, _ns)\nexcept _NotQuite as _e:\n    print('refused:', _e)\n"
            f"else:\n    raise AssertionError({complaint!r})\n")


def with_reference_answers(nb: Any, probes: bool = False) -> Any:
    """A copy of ``nb`` with every answer cell replaced by its reference answer — the worked solution CI
    executes and the HTML course shows; with ``probes``, a wrong-answer probe after each check cell."""
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    queue = exercises(nb)
    cells = []
    for c in nb.cells:
        if "answer" in cell_tags(c):
            c.source = c.metadata["splitbrain"]["reference"]
        cells.append(c)
        if probes and "check" in cell_tags(c) and queue:
            cells.append(nbformat.v4.new_code_cell(wrong_answer_probe(queue.pop(0))))
    nb.cells = cells
    return nb
