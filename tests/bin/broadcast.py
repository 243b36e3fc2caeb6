#!/usr/bin/env python3
"""A Maelstrom broadcast node (standalone, stdlib only) that survives partitions: every 100 ms it sends
each neighbour the messages that neighbour has not acknowledged yet (``gossip`` / ``gossip_ok``),
so whatever a partition drops is sent again after it heals."""

import json
import sys
import threading
import time


def main() -> None:
    lock = threading.Lock()
    state = {"id": None, "next": 0}
    neighbours: list = []
    seen: set = set()
    acked: dict = {}  # neighbour -> messages it confirmed

    def send(dest, body):
        with lock:
            print(json.dumps({"src": state["id"], "dest": dest, "body": body}), flush=True)

    def reply(msg, body):
        with lock:
            state["next"] += 1
            mid = state["next"]
        send(msg["src"], {**body, "msg_id": mid, "in_reply_to": msg["body"]["msg_id"]})

    def gossip():
        while True:
            time.sleep(0.1)
            with lock:
                todo = {n: sorted(seen - acked.setdefault(n, set())) for n in neighbours}
            for n, ms in todo.items():
                if ms:
                    send(n, {"type": "gossip", "messages": ms})

    threading.Thread(target=gossip, daemon=True).start()
    for line in sys.stdin:
        msg = json.loads(line)
        body = msg["body"]
        t = body["type"]
        if t == "init":
            state["id"] = body["node_id"]
            reply(msg, {"type": "init_ok"})
        elif t == "topology":
            with lock:
                neighbours[:] = body["topology"].get(state["id"], [])
            reply(msg, {"type": "topology_ok"})
        elif t == "broadcast":
            with lock:
                seen.add(body["message"])
            reply(msg, {"type": "broadcast_ok"})
        elif t == "gossip":
            with lock:
                seen.update(body["messages"])
            send(msg["src"], {"type": "gossip_ok", "messages": body["messages"]})
        elif t == "gossip_ok":
            with lock:
                acked.setdefault(msg["src"], set()).update(body["messages"])
        elif t == "read":
            with lock:
                ms = sorted(seen)
            reply(msg, {"type": "read_ok", "messages": ms})


if __name__ == "__main__":
    main()
