"""The shape of a predict-then-run exercise, shared by every notebook.

A cell is ``(kind, source)`` or ``(kind, source, metadata)``. :func:`exercise` returns the four
cells of one exercise; the answer cell's metadata carries the reference answer (substituted when
CI and the HTML course execute the notebook) and a wrong answer (which the test suite checks is
refused with :class:`simulator.runner.teach.NotQuite`).
"""

from __future__ import annotations

Cell = tuple

INTRO = """## Exercises: predict, then run

Each exercise asks a question about a concrete scenario. Write your answer in the `prediction = None`
cell (a number, or the letter of a choice) **before** running the simulation after it; the check cell
then compares your prediction with the measurement and, where one exists, the closed form, and
explains the gap. Policy exercises ask you to change a setting until an assertion passes. Being
wrong is the point: the explanation is where the lesson is."""


def exercise(n: int, title: str, question: str, *, answer: str, reference: str, wrong: str, run: str,
             check: str, policy: bool = False) -> list[Cell]:
    """The cells of exercise ``n``.

    ``answer`` is the cell as shipped (``prediction = None   # <- ...``, or a policy that misses its
    target); ``reference`` the same cell with a correct answer; ``wrong`` one that must be refused.
    ``run`` simulates (and asserts agreement with the closed form via ``teach.agrees``); ``check``
    judges the answer with ``teach.check_number``/``check_choice``/``check_targets``. With
    ``policy=True`` the run cell uses the answer, so the wrong answer is judged after rerunning it.
    """
    meta = {"tags": ["answer"], "splitbrain": {"exercise": n, "reference": reference, "wrong": wrong,
                                               "rerun": policy}}
    return [("md", f"### Exercise {n} · {title}\n\n{question}"),
            ("code", answer, meta),
            ("code", run, {"tags": ["run"]}),
            # a policy shipped to miss its target raises here; Jupyter's "raises-exception" tag lets Run all go on
            ("code", check, {"tags": ["check", "raises-exception"] if policy else ["check"]})]
