"""Closes tasks the way Python sosw 0.7.47's essentials do, against the tables named by a prefix: its
WorkerAssistant marks tasks completed, and its TaskManager.archive_task (what its Scavenger calls) moves
tasks to the closed table, as `<labourer>_1` when completed and `<labourer>_0` otherwise. Used by the
job reconciliation test (tests/tests/stores/jobs_sosw07.rs) on tasks the Rust scheduler wrote.

    python scripts/sosw07_close_tasks.py PREFIX LABOURER --complete ID... --archive ID...

Run with the virtualenv of scripts/sosw07.sh, with AWS_ENDPOINT_URL pointing at DynamoDB Local.
Prints one JSON line: the ids completed and archived.
"""

import argparse
import json
import os
import sys

# The bench driver's Lambda context and task config, which this script shares.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "python"))
from sosw07_driver import as_lambda, task_config  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("prefix")
    parser.add_argument("labourer")
    parser.add_argument("--complete", nargs="*", default=[])
    parser.add_argument("--archive", nargs="*", default=[])
    args = parser.parse_args()

    from sosw.worker_assistant import WorkerAssistant
    from sosw.managers.task import TaskManager

    if args.complete:
        as_lambda("sosw_worker_assistant")
        assistant = WorkerAssistant(
            custom_config={"dynamo_db_config": {"table_name": f"{args.prefix}sosw_tasks"}}
        )
        for task_id in args.complete:
            assistant({"action": "mark_task_as_completed", "task_id": task_id})
    if args.archive:
        as_lambda("sosw_scavenger")
        manager = TaskManager(custom_config=task_config(args.prefix, args.labourer, 1))
        for task_id in args.archive:
            manager.archive_task(task_id)
    print(json.dumps({"completed": args.complete, "archived": args.archive}), flush=True)


if __name__ == "__main__":
    main()
