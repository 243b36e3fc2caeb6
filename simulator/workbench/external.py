"""External hosts: any program that speaks Maelstrom's protocol runs as a subprocess of a test, so a
Gossip Glomers solution in Go, Rust, Python or JavaScript runs unchanged (``TestOptions(bin=...)``).

The protocol is jepsen-io/maelstrom ``doc/protocol.md``: the program reads messages from stdin and
writes messages to stdout, one JSON object ``{"src", "dest", "body"}`` per line, and logs to stderr.
As in Maelstrom's ``maelstrom.process`` (one thread per stream of each process), a reader thread per
process puts the lines it reads in a queue; the simulation drains that queue every ``poll_s`` (1 ms)
and sends each message on the kernel's network from the program's node, so latency, partitions and
loss act on it as on any in-process node's. A message delivered to the node is written to the
program's stdin (by a writer thread: a program that stops reading cannot stall the simulation).

**NOT deterministic.** The program runs on the wall clock — its own timers, its scheduling by the
OS, its thread interleavings — so the simulation runs in step with the wall clock too
(``simpy.rt.RealtimeEnvironment``, one simulated second per wall second): a line the program writes
is stamped with the simulated time at which the queue is drained (at most ``poll_s`` late, more if
the machine is busy). The same seed gives the same fault schedule and the same client operations,
not the same history; a run's results say ``"deterministic": False``. Use external hosts to run a
finished program through the same tests; use in-process nodes (deterministic, faster than real time)
to hunt and shrink.

Faults: a kill (a kernel crash) sends SIGKILL to the program's process group and reaps it (Maelstrom
kills with ``destroyForcibly``); the restart spawns a new process, which the harness sends ``init``
again. A pause is SIGSTOP and, when it ends, SIGCONT (the kernel has no pause hook: the host watches
``kernel.paused`` every ``poll_s``); messages to the paused node are held by the kernel meanwhile,
as for an in-process node. The clock nemesis cannot touch the program's clock (it reads the
machine's), so it has no effect on external programs. Output that is not a valid message (not JSON,
or failing Maelstrom's message checks, or with a ``src`` other than the node's id) is counted in
``malformed`` and ``exceptions``, logged and dropped — Maelstrom reports it as an error; it never
stops the harness. A program that exits on its own is logged and counted in ``exceptions``.

Every process is killed when the host is closed (``TestRun.run`` closes its hosts in a ``finally``)
and, failing that, at interpreter exit (``atexit``); each is reaped, so none is left a zombie.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from simpy.rt import RealtimeEnvironment

from simulator.core import Simulation
from simulator.network import ONEWAY

from .protocol import check_message

if TYPE_CHECKING:
    from simulator.network import Message as Wire

    from .host import NetStats

# Every process started and not yet reaped, so that interpreter exit can kill what a crash left.
_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def _kill(p: subprocess.Popen) -> int:
    """SIGKILL ``p``'s process group (a wrapper's children too: ``go run``, ``npm start``) and reap it."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            p.kill()
    try:
        rc = p.wait(timeout=5.0)
    except subprocess.TimeoutExpired:  # unkillable (uninterruptible sleep): leave it to the OS
        rc = -int(signal.SIGKILL)
    with _LIVE_LOCK:
        _LIVE.discard(p)
    return rc


@atexit.register
def _kill_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for p in live:
        _kill(p)


def check_bin(argv: Any) -> list[str]:
    """``argv`` (program and arguments) with the program resolved to an absolute path; ``ValueError``
    naming ``bin`` if it is not a non-empty sequence of strings or the program is not an executable
    file (a name without ``/`` is looked up on ``PATH``)."""
    if isinstance(argv, str) or not isinstance(argv, Sequence) or not argv \
            or not all(isinstance(a, str) for a in argv):
        raise ValueError(f"bin={argv!r} is not allowed: need a non-empty tuple of strings (program, args...)")
    prog = argv[0]
    path = shutil.which(prog) if os.sep not in prog else prog
    if path is None or not os.path.isfile(path):
        raise ValueError(f"bin={prog!r} is not allowed: no such program (need an executable file)")
    if not os.access(path, os.X_OK):
        raise ValueError(f"bin={prog!r} is not allowed: {os.path.abspath(path)} is not executable (chmod +x)")
    return [os.path.abspath(path), *argv[1:]]


def realtime_simulation(seed: int = 0, *, trace: bool = False) -> Simulation:
    """A :class:`Simulation` that runs in step with the wall clock (one simulated second per second).

    ``strict=False``: an event processed late (a busy machine) runs late rather than stopping the
    run. The clock is re-synchronised when ``run`` starts, so the time spent building the world and
    starting the programs is not eaten up by a burst of early events."""
    env = RealtimeEnvironment(factor=1.0, strict=False)
    sim = Simulation(seed=seed, trace=trace, env=env)
    sim.on_start(env.sync)
    return sim


class ExternalHost:
    """One node of the cluster run by an external program: a kernel node plus the current process.

    The harness uses it as it uses :class:`~simulator.workbench.host.Host`: built as
    ``(sim, name, argv, stats)``; ``.kernel``; ``.exceptions``; ``.logs``; kill and restart via
    the kernel's crash and recover hooks. ``pids`` lists every process it started (one per life),
    ``exits`` each one's ``(pid, returncode)`` once reaped (``-9``: killed). See the module
    docstring; NOT deterministic.
    """

    def __init__(self, sim: Simulation, name: str, factory: Sequence[str], stats: NetStats, *,
                 log_dir: str | Path | None = None, poll_s: float = 0.001) -> None:
        if not isinstance(sim.env, RealtimeEnvironment):
            raise ValueError("ExternalHost needs a simulation that runs on the wall clock: "
                             "use external.realtime_simulation() (a simpy.rt.RealtimeEnvironment)")
        if not (isinstance(poll_s, (int, float)) and 0 < poll_s <= 0.1):
            raise ValueError(f"poll_s={poll_s!r} is not allowed: need 0 < poll_s <= 0.1 seconds")
        self.sim = sim
        self.name = name
        self.argv = check_bin(factory)
        self.stats = stats
        self.poll_s = float(poll_s)
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.kernel = sim.node(name)
        self.logs: list[tuple[float, str]] = []
        self.exceptions = 0  # malformed lines and exits the harness did not cause
        self.malformed = 0
        self.stale = 0  # lines a killed process wrote that were still queued: dropped (a down node sends nothing)
        self.pids: list[int] = []
        self.exits: list[tuple[int, int]] = []
        self.incarnation = 0
        self.proc: subprocess.Popen | None = None
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()  # (incarnation, stream, text) from reader threads
        self._outbox: queue.SimpleQueue | None = None  # lines for the current process's stdin
        self._threads: list[threading.Thread] = []
        self._stderr_file: IO[bytes] | None = None
        self._stopped = False  # SIGSTOP sent (a pause)
        self._eof = False
        self.closed = False
        self.kernel.on("*", self._receive)
        self.kernel.on_crash(self._crashed)
        self.kernel.on_recover(self._start)
        self._start()
        sim.at(0.0, self._pump)

    # -- life cycle -------------------------------------------------------------------------------
    def _start(self) -> None:
        if self.closed:
            return
        self.incarnation += 1
        inc = self.incarnation
        stderr: Any = subprocess.PIPE
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            if self._stderr_file is None:
                self._stderr_file = open(self.log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 (closed in close())
            stderr = self._stderr_file
        p = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                             start_new_session=True)  # its own process group: a kill reaches its children
        with _LIVE_LOCK:
            _LIVE.add(p)
        self.proc = p
        self.pids.append(p.pid)
        self._eof = False
        self._stopped = False
        out: queue.SimpleQueue = queue.SimpleQueue()
        self._outbox = out
        threads = [threading.Thread(target=self._read, args=(p.stdout, inc, "out"), daemon=True),
                   threading.Thread(target=_write, args=(p.stdin, out), daemon=True)]
        if p.stderr is not None:
            threads.append(threading.Thread(target=self._read, args=(p.stderr, inc, "err"), daemon=True))
        for t in threads:
            t.name = f"{self.name}-{inc}-{t.name}"
            t.start()
        self._threads = [t for t in self._threads if t.is_alive()] + threads
        self.log(f"started pid {p.pid}: {' '.join(self.argv)}")

    def _read(self, stream: IO[bytes], inc: int, kind: str) -> None:
        put = self._inbox.put
        try:
            for raw in stream:
                put((inc, kind, raw.decode("utf-8", "replace").rstrip("\r\n")))
        except (OSError, ValueError):  # closed under us
            pass
        if kind == "out":
            put((inc, "eof", ""))

    def _end(self, reason: str) -> None:
        """Kill (if alive) and reap the current process; stop its writer."""
        p, self.proc = self.proc, None
        if p is None:
            return
        rc = _kill(p)
        self.exits.append((p.pid, rc))
        if self._outbox is not None:
            self._outbox.put(None)
            self._outbox = None
        self._stopped = False
        self.log(f"{reason}: pid {p.pid} exit status {rc}")

    def _crashed(self) -> None:
        self._end("killed")

    def close(self) -> None:
        """Kill and reap the process, join the I/O threads, close the log file. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self._end("stopped at the end of the run")
        for t in self._threads:
            t.join(timeout=1.0)
        self._threads = []
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    # -- the simulation's side --------------------------------------------------------------------
    def _receive(self, wire: Wire) -> None:
        out = self._outbox
        if out is not None:
            out.put((json.dumps({"src": wire.src, "dest": self.name, "body": wire.payload}) + "\n").encode())

    def _pump(self) -> None:
        """Every ``poll_s``: follow the kernel's pause with SIGSTOP/SIGCONT, then inject what the
        program wrote since the last poll (nothing while it is stopped)."""
        if self.closed:
            return
        p = self.proc
        if p is not None:
            paused = self.kernel.paused
            if paused != self._stopped:
                self._stopped = paused
                try:
                    os.killpg(p.pid, signal.SIGSTOP if paused else signal.SIGCONT)
                except ProcessLookupError:
                    pass
                self.log("paused (SIGSTOP)" if paused else "resumed (SIGCONT)")
            if self._eof and p.poll() is not None:
                self.exceptions += 1
                self._end("exited on its own")
        if not self._stopped:
            get = self._inbox.get_nowait
            while True:
                try:
                    inc, kind, text = get()
                except queue.Empty:
                    break
                if inc != self.incarnation or self.proc is None:
                    self.stale += kind == "out"
                elif kind == "out":
                    self._line(text)
                elif kind == "err":
                    self.log(text)
                else:
                    self._eof = True
        self.sim.at(self.poll_s, self._pump)

    def _line(self, text: str) -> None:
        if not text.strip():
            return  # a blank line carries nothing
        try:
            obj = json.loads(text)
        except ValueError:
            self._malformed(f"a line on stdout that is not JSON (logs go to stderr): {text[:200]!r}")
            return
        why = check_message(obj)
        if why is None and obj["src"] != self.name:
            why = f"src {obj['src']!r} is not this node's id {self.name!r}"
        if why is not None:
            self._malformed(f"malformed message ({why}): {text[:200]!r}")
            return
        dest, body = obj["dest"], obj["body"]
        if dest not in self.sim.nodes:
            self.log(f"dropped a message to unknown node {dest!r}: {body!r}")
            return
        if not self.kernel.up:
            return
        self.stats.count(self.name, dest)
        self.sim.net.send(self.name, dest, body["type"], body, 0, ONEWAY)

    def _malformed(self, text: str) -> None:
        self.malformed += 1
        self.exceptions += 1
        self.log(text)

    def log(self, text: str) -> None:
        self.logs.append((self.sim.now, text))


def _write(stdin: IO[bytes], out: queue.SimpleQueue) -> None:
    """The writer thread: lines to the program's stdin until told to stop or the pipe breaks."""
    try:
        while True:
            line = out.get()
            if line is None:
                break
            stdin.write(line)
            stdin.flush()
    except (OSError, ValueError):  # the process died (broken pipe) or the pipe was closed
        pass
    try:
        stdin.close()
    except (OSError, ValueError):
        pass


__all__ = ["ExternalHost", "check_bin", "realtime_simulation"]
