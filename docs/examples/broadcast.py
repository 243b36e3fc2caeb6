"""Gossip Glomers challenge 3, on splitbrain's workbench: broadcast over the topology Maelstrom gives.

    splitbrain test -w broadcast --node docs/examples/broadcast.py:Broadcast --nemesis partition --latency 100
    splitbrain test -w broadcast --node docs/examples/broadcast.py:FireAndForget --nemesis partition --latency 100

``Broadcast`` gossips each new message to its neighbours as an RPC and retries every 0.5 s until the
neighbour acknowledges it, so a partition only delays delivery. ``FireAndForget`` sends once: a
message sent into a partition is gone, and the nodes behind it never learn it.
"""

from simulator.workbench import Node, RPCError


class Broadcast(Node):
    def __init__(self):
        self.messages = set()
        self.neighbours = []

    def on_topology(self, msg):
        self.neighbours = msg.body["topology"][self.node_id]
        self.reply(msg, {"type": "topology_ok"})

    def on_broadcast(self, msg):
        self.reply(msg, {"type": "broadcast_ok"})
        self.learn(msg.body["message"], msg.src)

    def on_gossip(self, msg):
        self.reply(msg, {"type": "gossip_ok"})
        self.learn(msg.body["message"], msg.src)

    def on_read(self, msg):
        self.reply(msg, {"type": "read_ok", "messages": sorted(self.messages)})

    def learn(self, m, src):
        if m in self.messages:
            return
        self.messages.add(m)
        for n in self.neighbours:
            if n != src:
                self.spawn(self.gossip(n, m))

    def gossip(self, dest, m):
        while True:  # until the neighbour says it has it
            try:
                yield self.rpc(dest, {"type": "gossip", "message": m}, timeout=0.5)
                return
            except RPCError:  # no answer within 0.5 s (lost, partitioned, crashed): send it again
                pass


class FireAndForget(Broadcast):
    def on_gossip(self, msg):
        self.learn(msg.body["message"], msg.src)

    def gossip(self, dest, m):
        self.send(dest, {"type": "gossip", "message": m})
        yield from ()
