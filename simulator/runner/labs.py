"""The labs' grader (notebook 08): run a learner's node on the workbench and explain the verdict.

    res = run_lab(MyBroadcast, "broadcast", node_count=5, nemesis=("partition",), latency_ms=100)
    check_lab(res)                     # NotQuite (with the minimal schedule) unless it passed

:func:`run_lab` runs the workbench test (``simulator.workbench.harness``) with the lab's options, prints
the one-line verdict ``splitbrain test`` prints and, when the node failed, shrinks the fault schedule
to a 1-minimal one, prints it and draws the space-time diagram of the replay zoomed on it — the same
pieces as the CLI (:mod:`simulator.runner.workbench_cmd`). :func:`check_lab` turns a failure, or a
missed target (``targets``: ``(name, measured, op, bound)``), into :class:`~simulator.runner.teach.NotQuite`
with the verdict and a hint, so a lab's check cell fails like an exercise's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .teach import NotQuite, check_targets
from .workbench_cmd import build, failure_figure, fault_label, shrink_test, verdict_line


@dataclass(repr=False)
class LabResult:
    """What a lab run found: ``valid`` (True/False/None), the results dict, the one-line verdict,
    the minimal failing schedule (None unless it failed) and the space-time figure of the failure."""

    valid: bool | None
    results: dict
    verdict: str
    minimal: Any = None
    figure: Any = None
    test: Any = None

    def __repr__(self) -> str:
        return f"LabResult({self.verdict!r})"


def run_lab(node: type, workload: str, *, shrink: bool = True, show: bool = True, **options: Any) -> LabResult:
    """Run ``node`` on ``workload`` with ``options`` (:class:`TestOptions` fields); print the verdict;
    on a failure, shrink it and draw the space-time diagram of the minimal failing schedule."""
    from simulator.workbench.harness import TestOptions

    opts = TestOptions(workload=workload, node=node, trace=False, **options)
    test = build(opts).run()
    res = test.results()
    line = verdict_line(res, opts)
    out = LabResult(res["valid"], res, line, test=test)
    if show:
        print(line)
    if res["valid"] is False and shrink:
        sh = shrink_test(opts, budget_s=30)
        out.minimal = sh["schedule"]
        out.figure = failure_figure(opts, sh["schedule"])
        if show:
            if len(sh["schedule"]):
                print(f"shrunk to {len(sh['schedule'])} of {sh['original']} faults:")
                for f in sh["schedule"].faults:
                    print(f"  {fault_label(f)}")
            else:
                print(f"it fails with none of the {sh['original']} faults: the bug needs no fault")
    return out


def availability_on(res: LabResult, nodes: set[str] | list[str], t0: float, t1: float) -> float:
    """Maelstrom's availability (ok / invoked) of the operations invoked in [t0, t1) s by the clients
    bound to ``nodes`` — e.g. the side of a partition cut off from the leader."""
    test = res.test
    n_clients = len(test.clients)
    want = set(nodes)
    ops = [o for o in test.ops if o.key != "final" and t0 <= o.invoke_time < t1
           and test.clients[o.process % n_clients].node in want]
    return sum(o.type == "ok" for o in ops) / len(ops) if ops else float("nan")


def check_lab(res: LabResult, *, hint: str = "", targets: list[tuple[str, float, str, float]] | None = None) -> None:
    """Refuse a failed lab run (or missed ``targets``) with :class:`NotQuite`: the verdict, the minimal
    schedule and ``hint``; say so when it passed."""
    if res.valid is not True:
        sched = ""
        if res.minimal is not None:
            sched = " Minimal failing schedule: " + ("; ".join(fault_label(f) for f in res.minimal.faults)
                                                     or "no fault at all") + "."
        raise NotQuite(f"{res.verdict}.{sched} {hint}".strip())
    if targets:
        check_targets(targets, hint=hint)
    print("✓ passed:", res.verdict)


__all__ = ["LabResult", "availability_on", "check_lab", "run_lab"]
