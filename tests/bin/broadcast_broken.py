#!/usr/bin/env python3
"""A WRONG Maelstrom broadcast node (standalone, stdlib only): a new message is forwarded once to the
topology's neighbours and never again, so a message sent across a partition is lost for good."""

import json
import sys


def main() -> None:
    node_id, neighbours, seen, next_id = None, [], set(), 0

    def send(dest, body):
        print(json.dumps({"src": node_id, "dest": dest, "body": body}), flush=True)

    def reply(msg, body):
        nonlocal next_id
        next_id += 1
        send(msg["src"], {**body, "msg_id": next_id, "in_reply_to": msg["body"]["msg_id"]})

    for line in sys.stdin:
        msg = json.loads(line)
        body = msg["body"]
        t = body["type"]
        if t == "init":
            node_id = body["node_id"]
            reply(msg, {"type": "init_ok"})
        elif t == "topology":
            neighbours = body["topology"].get(node_id, [])
            reply(msg, {"type": "topology_ok"})
        elif t == "broadcast":
            m = body["message"]
            if m not in seen:
                seen.add(m)
                for n in neighbours:
                    if n != msg["src"]:
                        send(n, {"type": "broadcast", "message": m})  # once, no msg_id, no retry
            if "msg_id" in body:
                reply(msg, {"type": "broadcast_ok"})
        elif t == "read":
            reply(msg, {"type": "read_ok", "messages": sorted(seen)})


if __name__ == "__main__":
    main()
