"""Loads every example config row (examples/configs/*.json) the way Python sosw 0.7.47's essentials do, offline.

    .tools/sosw07-venv/bin/python scripts/sosw07_config_rows.py [CONFIG_DIR]

Each essential (Orchestrator, Scavenger, Scheduler, WorkerAssistant) is constructed as its Lambda would be,
with AWS_LAMBDA_FUNCTION_NAME set, so sosw's own `Essential.init_config` merges `sosw_essential_config`, its
DEFAULT_CONFIG and `<function>_config`, and every nested Processor (TaskManager, EcologyManager,
SiblingsManager) merges `<function>_config` again, as in a Lambda. Only the AWS edges are replaced: the config
source returns the rows from CONFIG_DIR (what sosw's DynamoConfig returns for a row: its JSON value), and
DynamoDbClient's DescribeTable, Lambda's GetFunctionConfiguration and CloudWatch are not called. The
orchestrator and scavenger then run `register_labourers()`, which applies every labourer key the rows give.

Prints one line per essential and exits non-zero if any fails (a RecursionError from `init_clients`, a
ValueError from a labourer key sosw 0.7 rejects (its bug B3), ...).
"""

import json
import os
import pathlib
import sys
import traceback

ESSENTIALS = {
    "sosw_orchestrator": ("sosw.orchestrator", "Orchestrator", True),
    "sosw_scavenger": ("sosw.scavenger", "Scavenger", True),
    "sosw_scheduler": ("sosw.scheduler", "Scheduler", False),
    "sosw_worker_assistant": ("sosw.worker_assistant", "WorkerAssistant", False),
}


class FakeContext:
    def __init__(self, function_name):
        self.function_name = function_name
        self.aws_request_id = "config-rows-check"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.log_stream_name = "config-rows-check"

    @staticmethod
    def get_remaining_time_in_millis():
        return 60_000


def main():
    config_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "examples/configs")
    rows = {p.stem: json.loads(p.read_text()) for p in sorted(config_dir.glob("*.json"))}
    for name, value in rows.items():
        if not isinstance(value, dict):
            print(f"FAIL {name}: not a JSON object")
            return 1

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "offline")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "offline")
    import logging

    logging.disable(logging.CRITICAL)
    import sosw.app
    from sosw.app import LambdaGlobals
    from sosw.components.dynamo_db import DynamoDbClient
    from sosw.managers.ecology import EcologyManager
    from sosw.managers.task import TaskManager

    # The config table, as sosw's DynamoConfig answers: the row's JSON value, or {} when it is missing.
    sosw.app.get_config = lambda name: json.loads(json.dumps(rows.get(name, {})))
    DynamoDbClient.identify_dynamo_capacity = lambda self, table_name=None: None
    EcologyManager.get_max_labourer_duration = lambda self, labourer: 900
    EcologyManager.get_labourer_status = lambda self, labourer: 4
    TaskManager.get_average_labourer_duration = lambda self, labourer: 0

    failed = 0
    for function, (module, cls_name, registers) in ESSENTIALS.items():
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = function
        try:
            cls = getattr(__import__(module, fromlist=[cls_name]), cls_name)
            # After the import: a module-level LambdaGlobals() (the scheduler's) resets the context.
            LambdaGlobals().lambda_context = FakeContext(function)
            essential = cls()
            labourers = essential.task_client.register_labourers() if registers else []
            print(f"ok   {function}: constructed, init_clients {essential.config.get('init_clients')}"
                  + (f", {len(labourers)} labourer(s) registered" if registers else ""))
        except RecursionError:
            failed += 1
            print(f"FAIL {function}: RecursionError while constructing (a row's init_clients names an essential's "
                  f"own client, and every nested Processor re-reads `{function}_config`)")
        except Exception as e:  # noqa: BLE001 - any start-up failure is the finding
            failed += 1
            last = traceback.format_exception_only(type(e), e)[-1].strip()
            print(f"FAIL {function}: {last}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
