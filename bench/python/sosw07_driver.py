"""Drives Python sosw 0.7 (installed from PyPI by scripts/sosw07.sh) for the benchmark harness.

The harness (bench/, `sosw-bench`) starts the emulators, creates the tables, seeds queues and counts
DynamoDB requests in a proxy; this script only runs sosw 0.7's own essentials the way its Lambda
handlers would, and prints one JSON line with what it timed. It holds none of sosw's code.

    sosw07_driver.py enqueue    --prefix P --labourer L --tasks N --bucket B
    sosw07_driver.py orchestrate --prefix P --labourer L --tasks N
    sosw07_driver.py lifecycle  --prefix P --labourer L --tasks N --bucket B
    sosw07_driver.py coldstart  --essential sosw_orchestrator

Endpoints come from the environment, as boto3 reads them (AWS_ENDPOINT_URL_DYNAMODB, ..._LAMBDA,
..._S3, ..._SNS). BENCH_PROXY_CONTROL (the counting proxy's URL) names the phases it counts.
"""

import argparse
import json
import os
import sys
import time
import urllib.request
import uuid

START = time.perf_counter()


class FakeContext:
    """The parts of a Lambda context sosw 0.7 reads. The remaining time is a day, so the scheduler never
    hands its file to a sibling (its continuation is broken in 0.7.47 anyway, bug B12)."""

    def __init__(self, function_name):
        self.function_name = function_name
        self.aws_request_id = uuid.uuid4().hex
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.log_stream_name = "bench"
        self.memory_limit_in_mb = 128

    @staticmethod
    def get_remaining_time_in_millis():
        return 86_400_000


def phase(name):
    """Tells the counting proxy which phase the following requests belong to."""
    control = os.environ.get("BENCH_PROXY_CONTROL")
    if control:
        request = urllib.request.Request(f"{control}/__bench/phase/{name}", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=5).read()


def task_config(prefix, labourer, slots):
    return {
        "dynamo_db_config": {"table_name": f"{prefix}sosw_tasks"},
        "sosw_closed_tasks_table": f"{prefix}sosw_closed_tasks",
        "sosw_retry_tasks_table": f"{prefix}sosw_retry_tasks",
        "labourers": {
            labourer: {
                "arn": f"arn:aws:lambda:us-east-1:000000000000:function:{labourer}",
                "max_simultaneous_invocations": slots,
            }
        },
    }


def scheduler_config(prefix, labourer, bucket):
    schema = {"chunkable_attrs": [["section", {}]]}
    return {
        "task_config": task_config(prefix, labourer, 1),
        "queue_bucket": bucket,
        "job_schema": schema,
        "job_schema_variants": {"default": schema},
    }


def sections_job(labourer, tasks):
    return {"lambda_name": labourer, "isolate_sections": True, "sections": [f"s{i}" for i in range(tasks)]}


def as_lambda(function_name):
    """Sets the Lambda context sosw 0.7 keeps in a module global: its meta handler and scheduler read
    it, and fail without it (bug B17)."""
    from sosw.app import LambdaGlobals

    LambdaGlobals().lambda_context = FakeContext(function_name)


def new_scheduler(args):
    from sosw.scheduler import Scheduler

    as_lambda("sosw_scheduler")
    return Scheduler(custom_config=scheduler_config(args.prefix, args.labourer, args.bucket))


def enqueue(args):
    scheduler = new_scheduler(args)
    job = sections_job(args.labourer, args.tasks)
    phase("enqueue")
    started = time.perf_counter()
    scheduler({"job": job})
    secs = time.perf_counter() - started
    phase("idle")
    return {"secs": secs}


def orchestrate(args):
    from sosw.orchestrator import Orchestrator

    as_lambda("sosw_orchestrator")
    orchestrator = Orchestrator(custom_config={"task_config": task_config(args.prefix, args.labourer, args.tasks)})
    phase("orchestrate")
    started = time.perf_counter()
    orchestrator({"source": "aws.events"})
    secs = time.perf_counter() - started
    phase("idle")
    return {"secs": secs, "invoked": orchestrator.get_stats().get("invoked_tasks", 0)}


def lifecycle(args):
    from sosw.orchestrator import Orchestrator
    from sosw.scavenger import Scavenger
    from sosw.worker_assistant import WorkerAssistant

    scheduler = new_scheduler(args)
    config = {"task_config": task_config(args.prefix, args.labourer, args.tasks)}
    orchestrator = Orchestrator(custom_config=config)
    assistant = WorkerAssistant(custom_config={"dynamo_db_config": {"table_name": f"{args.prefix}sosw_tasks"}})
    scavenger = Scavenger(custom_config=config)
    secs = {}

    phase("enqueue")
    as_lambda("sosw_scheduler")
    started = time.perf_counter()
    scheduler({"job": sections_job(args.labourer, args.tasks)})
    secs["enqueue"] = time.perf_counter() - started

    phase("claim")
    as_lambda("sosw_orchestrator")
    started = time.perf_counter()
    orchestrator({"source": "aws.events"})
    secs["claim"] = time.perf_counter() - started

    # The worker's completion report, one per task, as its Worker.__call__ sends it. The task ids are
    # read outside the counted phases.
    phase("idle")
    task_ids = live_task_ids(f"{args.prefix}sosw_tasks")
    phase("complete")
    as_lambda("sosw_worker_assistant")
    started = time.perf_counter()
    for task_id in task_ids:
        assistant({"action": "mark_task_as_completed", "task_id": task_id})
    secs["complete"] = time.perf_counter() - started

    phase("archive")
    as_lambda("sosw_scavenger")
    started = time.perf_counter()
    scavenger({"source": "aws.events"})
    secs["archive"] = time.perf_counter() - started
    phase("idle")
    return {"secs": secs, "completed": len(task_ids)}


def live_task_ids(table):
    import boto3

    client = boto3.client("dynamodb")
    ids = []
    for page in client.get_paginator("scan").paginate(TableName=table, ProjectionExpression="task_id"):
        ids.extend(item["task_id"]["S"] for item in page["Items"])
    return ids


def coldstart(args):
    """Import, handler construction and first call, as a Lambda container's first invocation."""
    essential = args.essential
    if essential == "sosw_orchestrator":
        from sosw.orchestrator import Orchestrator as cls
        event = {"source": "aws.events"}
    elif essential == "sosw_scavenger":
        from sosw.scavenger import Scavenger as cls
        event = {"source": "aws.events"}
    elif essential == "sosw_worker_assistant":
        from sosw.worker_assistant import WorkerAssistant as cls
        event = {"action": "mark_task_as_completed", "task_id": "coldstart"}
    elif essential == "sosw_scheduler":
        from sosw.scheduler import Scheduler as cls
        event = {"job": sections_job(args.labourer, 1)}
    else:
        raise SystemExit(f"unknown essential {essential}")
    from sosw.app import LambdaGlobals, get_lambda_handler

    globals_ = LambdaGlobals()
    handler = get_lambda_handler(cls, globals_)
    handler(event, FakeContext(essential))
    return {"secs": time.perf_counter() - START}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["enqueue", "orchestrate", "lifecycle", "coldstart"])
    parser.add_argument("--prefix", default="")
    parser.add_argument("--labourer", default="bench_worker")
    parser.add_argument("--tasks", type=int, default=0)
    parser.add_argument("--bucket", default="sosw-bench")
    parser.add_argument("--essential", default="")
    args = parser.parse_args()
    result = {"enqueue": enqueue, "orchestrate": orchestrate, "lifecycle": lifecycle,
              "coldstart": coldstart}[args.workload](args)
    print(json.dumps(result), flush=True)
    if args.workload == "coldstart":
        # Stay alive until the harness has read this process's peak RSS.
        sys.stdin.read()


if __name__ == "__main__":
    main()
