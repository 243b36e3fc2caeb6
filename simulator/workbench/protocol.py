"""Maelstrom's wire protocol: messages, bodies, and its error codes with their definite meaning.

Follows jepsen-io/maelstrom ``doc/protocol.md``: a message is ``{"src", "dest", "body"}``; a body has
a mandatory ``type``, an optional ``msg_id`` (unique per sender) and, in a reply, ``in_reply_to``.
An error reply is ``{"type": "error", "in_reply_to", "code", "text"}``. A *definite* error means the
operation surely did not (and never will) happen; an *indefinite* one means it may have. Custom codes
(1000 and above) are always indefinite: "when in doubt, indefinite is always safe".
"""

from __future__ import annotations

from typing import Any, NamedTuple


class ErrorCode(NamedTuple):
    code: int
    name: str
    definite: bool


# doc/protocol.md, "Errors" (the table of Maelstrom's defined errors).
ERRORS: dict[int, ErrorCode] = {e.code: e for e in (
    ErrorCode(0, "timeout", False),
    ErrorCode(1, "node-not-found", True),
    ErrorCode(10, "not-supported", True),
    ErrorCode(11, "temporarily-unavailable", True),
    ErrorCode(12, "malformed-request", True),
    ErrorCode(13, "crash", False),
    ErrorCode(14, "abort", True),
    ErrorCode(20, "key-does-not-exist", True),
    ErrorCode(21, "key-already-exists", True),
    ErrorCode(22, "precondition-failed", True),
    ErrorCode(30, "txn-conflict", True),
)}
CODES: dict[str, int] = {e.name: e.code for e in ERRORS.values()}

TIMEOUT, NODE_NOT_FOUND, NOT_SUPPORTED, TEMPORARILY_UNAVAILABLE, MALFORMED_REQUEST = 0, 1, 10, 11, 12
CRASH, ABORT, KEY_DOES_NOT_EXIST, KEY_ALREADY_EXISTS, PRECONDITION_FAILED, TXN_CONFLICT = 13, 14, 20, 21, 22, 30


def is_definite(code: int) -> bool:
    """Maelstrom's rule: a defined definite code is definite; every other code (custom ones too) is not."""
    e = ERRORS.get(code)
    return e is not None and e.definite


def error_name(code: int) -> str:
    e = ERRORS.get(code)
    return e.name if e is not None else f"custom-{code}"


class RPCError(Exception):
    """An error reply, as an exception: raise it in a handler to answer ``{"type": "error", ...}``;
    ``yield node.rpc(...)`` raises it when the reply is an error or the call times out (code 0)."""

    def __init__(self, code: int, text: str = "", **extra: Any) -> None:
        if not isinstance(code, int) or isinstance(code, bool) or code < 0:
            raise ValueError(f"error code must be an integer >= 0, got {code!r}")
        # args are (code, text): SimPy rebuilds a failed event's exception as type(e)(*e.args)
        super().__init__(code, text)
        self.code, self.text, self.extra = code, text, extra

    def __str__(self) -> str:
        return f"{error_name(self.code)} ({self.code}){': ' + self.text if self.text else ''}"

    @property
    def definite(self) -> bool:
        return is_definite(self.code)

    def body(self) -> dict:
        b = {"type": "error", "code": self.code}
        if self.text:
            b["text"] = self.text
        b.update(self.extra)
        return b

    @classmethod
    def from_body(cls, body: dict) -> RPCError:
        extra = {k: v for k, v in body.items() if k not in ("type", "code", "text", "msg_id", "in_reply_to")}
        code = body.get("code", CRASH)
        return cls(code if isinstance(code, int) and code >= 0 else CRASH, str(body.get("text", "")), **extra)


class Message:
    """One Maelstrom message: ``src``, ``dest`` and the ``body`` dict (``msg.body["type"]``)."""

    __slots__ = ("src", "dest", "body")

    def __init__(self, src: str, dest: str, body: dict) -> None:
        self.src, self.dest, self.body = src, dest, body

    @property
    def type(self) -> str:
        return self.body.get("type", "")

    def to_json(self) -> dict:
        return {"src": self.src, "dest": self.dest, "body": self.body}

    def __repr__(self) -> str:
        return f"Message({self.src} -> {self.dest} {self.body!r})"


def check_message(obj: Any) -> str | None:
    """Why ``obj`` is not a valid Maelstrom message (None if it is)."""
    if not isinstance(obj, dict):
        return f"a message must be a JSON object, got {type(obj).__name__}"
    for k in ("src", "dest", "body"):
        if k not in obj:
            return f"a message needs {k!r}"
    if not isinstance(obj["src"], str) or not isinstance(obj["dest"], str):
        return "src and dest must be strings"
    body = obj["body"]
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        return "body must be an object with a string 'type'"
    for k in ("msg_id", "in_reply_to"):
        if k in body and (not isinstance(body[k], int) or isinstance(body[k], bool)):
            return f"body.{k} must be an integer"
    return None
