"""The workbench: write your own protocol node and test it as Maelstrom does — Maelstrom's protocol,
workloads, nemeses and checkers — deterministic, in simulated time, with seed hunting and shrinking.

    from simulator.workbench import Node

    class Echo(Node):
        def on_echo(self, msg):
            self.reply(msg, {**msg.body, "type": "echo_ok"})

    splitbrain test -w echo --node echo.py:Echo --time-limit 10

See docs/workbench.md. Protocols (Maelstrom's services, the reference nodes and their wrong
variants) live in ``models.workbench``; this package is the harness and holds no protocol.
"""

from .node import Node, Timer
from .protocol import CODES, ERRORS, Message, RPCError, is_definite
from .system import System

__all__ = ["CODES", "ERRORS", "Message", "Node", "RPCError", "System", "Timer", "is_definite"]
