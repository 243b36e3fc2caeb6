#!/usr/bin/env python3
"""A Maelstrom echo node: standalone, stdlib only (jepsen-io/maelstrom doc/protocol.md: one JSON message
per line on stdin/stdout, logs on stderr). ``--garbage`` also prints lines that are not valid messages
(tests of the harness's handling of malformed output)."""

import json
import sys


def main() -> None:
    garbage = "--garbage" in sys.argv[1:]
    node_id = None
    next_id = 0
    for line in sys.stdin:
        msg = json.loads(line)
        body = msg["body"]
        if body["type"] == "init":
            node_id = body["node_id"]
            reply = {"type": "init_ok"}
            print(f"echo node {node_id} up", file=sys.stderr, flush=True)
            if garbage:
                print("this is not JSON", flush=True)
                print(json.dumps({"src": node_id, "body": {"type": "oops"}}), flush=True)  # no dest
        elif body["type"] == "echo":
            reply = {"type": "echo_ok", "echo": body["echo"]}
        else:
            continue
        next_id += 1
        reply.update(msg_id=next_id, in_reply_to=body["msg_id"])
        print(json.dumps({"src": node_id, "dest": msg["src"], "body": reply}), flush=True)


if __name__ == "__main__":
    main()
