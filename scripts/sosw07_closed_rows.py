"""Writes closed-table items exactly as Python sosw 0.7.47 stores them (bug B9: the payload as a Python repr),
with sosw's own DynamoDbClient conversions and no AWS call. Run with the virtualenv of scripts/sosw07.sh:

    .tools/sosw07-venv/bin/python scripts/sosw07_closed_rows.py > crates/sosw-core/src/task/testdata/sosw-0.7.47-closed-rows.json

For each payload (JSON text, as sosw 0.7's `create_task` stored it in `sosw_tasks`), the live item is read back
the way `TaskManager.get_task_by_id` reads it (`dynamo_to_dict(fetch_all_fields=True)`, which decodes the
payload into a dict), marked as `archive_task` marks a dead task, and converted the way `archive_task`'s `put`
converts it (`dict_to_dynamo(strict=False)`). The output holds the original JSON text beside the closed item.
"""

import json

from sosw.components.dynamo_db import DynamoDbClient
from sosw.managers.task import TaskManager
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

PAYLOADS = [
    '{"word": "dead", "count": 2}',
    '{"zeta": 1, "alpha": {"m": null, "b": [1, "two", 3.5, true, false]}, "a": []}',
    '{"it\'s": "say \\"hi\\"", "both": "\'\\"", "back\\\\slash": "tab\\there\\nnewline"}',
    '{"unicode": "caf\\u00e9 \\ud83d\\ude00 \\u2028 \\u0007", "empty": "", "nested": {"deep": [[{"x": null}]]}}',
    '{"big": 12345678901234567890, "neg": -42, "float": 1e+16, "small": 1.5e-07, "negf": -0.25}',
    '{"date_list": ["2026-11-23"], "sections": ["s1"], "isolate_sections": true}',
]


def client():
    config = dict(TaskManager.DEFAULT_CONFIG["dynamo_db_config"])
    c = DynamoDbClient.__new__(DynamoDbClient)
    c.config = config
    c.row_mapper = config["row_mapper"]
    c.type_serializer = TypeSerializer()
    c.type_deserializer = TypeDeserializer()
    return c


def main():
    c = client()
    rows = []
    for i, text in enumerate(PAYLOADS):
        task_id = f"sosw07dead{i:02d}"
        live = c.dict_to_dynamo(
            {"task_id": task_id, "labourer_id": "w", "created_at": 1700000000.5,
             "greenfield": 1731557660, "attempts": 3, "payload": text},
            strict=False,
        )
        task = c.dynamo_to_dict(live, fetch_all_fields=True)
        task["labourer_id_task_status"] = f"{task['labourer_id']}_0"
        task["closed_at"] = 1700005000
        closed = c.dict_to_dynamo(task, strict=False)
        rows.append({"payload_json": text, "closed_item": closed})
    print(json.dumps(rows, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
