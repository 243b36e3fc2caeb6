"""Gossip Glomers challenge 1, on splitbrain's workbench: answer every echo with its own payload.

    splitbrain test -w echo --node docs/examples/echo.py:Echo --node-count 1 --time-limit 10
"""

from simulator.workbench import Node


class Echo(Node):
    def on_echo(self, msg):
        self.reply(msg, {**msg.body, "type": "echo_ok"})
