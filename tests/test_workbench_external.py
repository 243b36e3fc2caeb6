"""External Maelstrom programs (``harness.TestOptions(bin=...)``): the project's own small programs in
tests/bin run as subprocesses, in real time (each test costs its simulated seconds in wall time)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.faults import Crash, FaultSchedule, Partition, Pause
from simulator.workbench import harness

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

BIN = Path(__file__).parent / "bin"


def _opts(prog, *args, **kw):
    base = dict(workload="echo", node=None, bin=(str(BIN / prog), *args), node_count=3, time_limit=2.0, rate=10.0,
                timeout_s=1.0, recovery_s=0.5)
    return harness.TestOptions(**{**base, **kw})


def _gone(pid: int) -> bool:
    """The process is neither running nor a zombie (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _state(pid: int) -> str | None:
    """The process's state letter from /proc (``T``: stopped), or None without /proc."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def test_echo_over_bin_is_valid_and_says_not_deterministic():
    run = harness.TestRun(_opts("echo.py")).run()
    res = run.results()
    assert res["valid"] is True and res["deterministic"] is False
    assert res["perf"]["ok"] == res["perf"]["ops"] >= 10  # ~2 s at 10/s
    assert res["not_initialized"] == [] and res["node_exceptions"] == {}
    for h in run.hosts.values():
        assert len(h.pids) == 1 and all(_gone(p) for p in h.pids)
        assert any("echo node" in text for _, text in h.logs)  # stderr captured into the node's log
    from models.workbench import reference  # the in-process path says the opposite
    det = harness.TestRun(harness.TestOptions(workload="echo", node=reference("echo"), time_limit=1.0)).run().results()
    assert det["deterministic"] is True


def test_kill_kills_the_process_and_restart_spawns_a_new_one():
    sched = FaultSchedule([Crash(at=0.5, node="n1", recover_at=1.0), Pause(at=0.5, node="n2", duration=0.6)])
    run = harness.TestRun(_opts("echo.py", time_limit=2.5, faults=sched))
    n1, n2 = run.hosts["n1"], run.hosts["n2"]
    seen = {}
    run.sim.at(0.8, lambda: seen.update(n1_gone=_gone(n1.pids[0]), n1_procs=len(n1.pids),
                                        n2_state=_state(n2.pids[0])))
    run.sim.at(1.5, lambda: seen.update(n2_after=_state(n2.pids[0])))
    res = run.run().results()
    assert seen["n1_gone"] and seen["n1_procs"] == 1  # killed and reaped while down
    assert len(n1.pids) == 2 and n1.pids[0] != n1.pids[1]
    assert n1.exits[0] == (n1.pids[0], -9)  # SIGKILL
    assert sum("echo node n1 up" in t for _, t in n1.logs) == 2  # the new process got init again
    # c1 is bound to n1: it is answered again after the restart
    assert any(o.process % 3 == 0 and o.type == "ok" and o.invoke_time > 1.1 for o in run.ops)
    if seen["n2_state"] is not None:
        assert seen["n2_state"] == "T" and seen["n2_after"] in ("S", "R")  # SIGSTOP, then SIGCONT
    assert len(n2.pids) == 1
    assert all(_gone(p) for h in run.hosts.values() for p in h.pids)
    assert res["deterministic"] is False


def test_malformed_output_is_counted_not_fatal():
    run = harness.TestRun(_opts("echo.py", "--garbage", time_limit=1.0)).run()
    res = run.results()
    assert res["node_exceptions"] == {"n1": 2, "n2": 2, "n3": 2}  # one non-JSON line, one without dest
    assert res["workload"]["valid"] is True and res["perf"]["ok"] >= 3
    assert any("not JSON" in t for _, t in run.hosts["n1"].logs)


def test_bad_bin_names_the_field(tmp_path):
    with pytest.raises(ValueError, match=r"bin=.*no such program"):
        _opts("no-such-program.py")
    f = tmp_path / "node.py"
    f.write_text("print()\n")
    with pytest.raises(ValueError, match=r"bin=.*not executable"):
        harness.TestOptions(workload="echo", node=None, bin=(str(f),))
    with pytest.raises(ValueError, match="bin="):
        harness.TestOptions(workload="echo", node=None, bin="tests/bin/echo.py")  # a string, not (program, args...)


# n1 alone from 0.3 s to 1.4 s of a 2 s test: whatever is broadcast meanwhile, on either side, must cross
# the cut to reach every node. 20 ops/s, half of them broadcasts: ~11 broadcasts during the cut.
PARTITION = FaultSchedule([Partition(at=0.3, groups=(("n1",), ("n2", "n3")), heal_at=1.4)])


@pytest.mark.parametrize("prog,valid", [("broadcast_broken.py", False), ("broadcast.py", True)])
def test_broadcast_under_partition(prog, valid):
    run = harness.TestRun(_opts(prog, workload="broadcast", topology="total", rate=20.0, faults=PARTITION)).run()
    res = run.results()
    assert res["net"]["dropped_partition"] > 0
    assert res["workload"]["valid"] is valid, res["workload"]
    assert all(_gone(p) for h in run.hosts.values() for p in h.pids)


def test_a_program_that_exits_is_counted_and_reaped():
    run = harness.TestRun(_opts("echo.py", bin=("/bin/sh", "-c", "exit 3"), time_limit=0.3, timeout_s=0.3)).run()
    res = run.results()
    assert res["node_exceptions"] == {"n1": 1, "n2": 1, "n3": 1} and res["not_initialized"] == ["n1", "n2", "n3"]
    for h in run.hosts.values():
        assert h.exits == [(h.pids[0], 3)] and _gone(h.pids[0])


def test_processes_are_killed_when_the_run_fails():
    bad = FaultSchedule([Crash(at=0.5, node="n9", recover_at=1.0)])  # no such node: run() raises
    run = harness.TestRun(_opts("echo.py", faults=bad))
    with pytest.raises(ValueError):
        run.run()
    assert all(_gone(p) for h in run.hosts.values() for p in h.pids)


def test_processes_are_killed_at_interpreter_exit():
    """A run built and never run (or a crashed harness) leaves nothing behind: ``sleep`` ignores its
    closed stdin, so only the atexit hook can end it."""
    code = ("from simulator.workbench import harness\n"
            "o = harness.TestOptions(workload='echo', node=None, bin=('/bin/sleep', '30'), node_count=2)\n"
            "r = harness.TestRun(o)\n"
            "print(' '.join(str(p) for h in r.hosts.values() for p in h.pids))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                         cwd=Path(__file__).parent.parent, check=True).stdout.split()
    pids = [int(p) for p in out]
    assert len(pids) == 2 and all(_gone(p) for p in pids)
