#!/usr/bin/env python3
"""A sosw 0.7-style worker run as a `command` labourer by `sosw local run`.

sosw sends the worker payload (the task's payload with `task_id`, `labourer_id`, `attempts`, ...
merged in) on stdin, as one JSON object. Exit status 0 completes the task; any other status is a
failure that sosw retries, then declares dead after `max_attempts`.

The handler is the same function a Python sosw Lambda would have, so a worker can be tried locally
before it is deployed.
"""

import hashlib
import json
import sys


def simulated_count(date, topic, word):
    """The same deterministic "count" as the Rust tutorial worker (0 to 999)."""
    digest = hashlib.sha256(f"{date}\n{topic}\n{word}".encode()).digest()
    return int.from_bytes(digest[:2], "big") % 1000


def lambda_handler(event, context):
    """Counts every (day, topic, word) of the chunk."""
    words = event.get("words") or []
    if not words:
        raise ValueError("the task has no `words` to count")
    counts = [
        {"date": d, "topic": t, "word": w, "count": simulated_count(d, t, w)}
        for d in event.get("date_list") or ["today"]
        for t in event.get("topics") or [""]
        for w in words
    ]
    return {"task_id": event["task_id"], "total": sum(c["count"] for c in counts)}


if __name__ == "__main__":
    # An exception exits with status 1: a failed attempt.
    lambda_handler(json.load(sys.stdin), None)
