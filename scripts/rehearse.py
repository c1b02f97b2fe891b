"""The deploy rehearsal's driver (run by scripts/rehearse.sh, `make rehearse`): the project's three
stacks created unchanged, with docs/deploy.md's parameters, on moto server's CloudFormation.

1. Pre-flight checks moto skips: each parameter given is declared and meets its AllowedValues,
   AllowedPattern and MinValue/MaxValue, every parameter without a default is given, the IAM
   capability the template needs is named, and every function's bundle key exists in the code bucket.
2. The bundles uploaded, the stacks created (CREATE_COMPLETE), the essentials updated to
   ScheduleState=ENABLED as docs/deploy.md's step 6 does.
3. What the stacks made, read back: tables and indexes, functions (GetFunctionConfiguration: runtime,
   environment, reserved concurrency), the rule and its targets, the topic, the roles' inline
   policies (moto stores them as a Python repr).
4. Checks on what was read back: every function has an EventInvokeConfig in its stack with
   MaximumRetryAttempts 0 and a maximum event age (moto accepts the type but keeps nothing, so the
   stack's template is read); every role policy passes parliament (each action's real resource
   types: events:ListRules only on "*"); each function's environment names what exists (config
   table, schedule rule).

Exits non-zero on the first failed check, naming it. Prints a report of what was created.
"""

import argparse
import ast
import os
import json
import re
import sys
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config
from parliament import analyze_policy_string

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_iam import Loader, Tagged  # noqa: E402
import rehearsal_lambda  # noqa: E402
import yaml  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
CODE_BUCKET = f"sosw-code-{ACCOUNT}-{REGION}"
CODE_PREFIX = "sosw/bundles/"
WORKERS = ["sosw_tutorial_pull_tweeter_hashtags", "sosw_tutorial_flaky_hashtags"]
# Closes its own tasks (`report_to: "store"`, the worker assistant's logic in the worker): its role and
# variables come from the example worker's stack with ReportsToStore=true. The other one reports to the
# worker assistant.
STORE_REPORTER = "sosw_tutorial_flaky_hashtags"
ENDED = ("finished", "finished_with_failures")  # a job's status once every task is closed or dead


class RehearsalFailed(Exception):
    pass


def fail(what):
    raise RehearsalFailed(what)


def clients(endpoint):
    config = Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})
    make = lambda name: boto3.client(  # noqa: E731
        name,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="rehearsal",
        aws_secret_access_key="rehearsal",
        config=config,
    )
    return {n: make(n) for n in ["cloudformation", "s3", "lambda", "iam", "events", "sns", "sqs", "dynamodb"]}


def load_template(path):
    return yaml.load(Path(path).read_text(), Loader=Loader)


# The table layout the stacks are deployed with (--layout): sosw 0.7's tables or the lean table.
LAYOUT = "sosw07"
LEAN_TABLE = "sosw_lean"


def deploys(repo):
    """docs/deploy.md's stacks and parameters, in its order (section 2, 4; section 6 updates)."""
    worker_arns = ",".join(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{w}" for w in WORKERS)
    layout = {} if LAYOUT == "sosw07" else {"Layout": LAYOUT}
    yield "sosw-tables", repo / "cloudformation/sosw-tables.yaml", dict(layout), []
    yield (
        "sosw-essentials",
        repo / "cloudformation/sosw-essentials.yaml",
        {"CodeBucket": CODE_BUCKET, "LabourerFunctionArns": worker_arns, "ScheduleState": "DISABLED"} | layout,
        ["CAPABILITY_IAM"],
    )
    for worker in WORKERS:
        params = {"WorkerName": worker, "CodeBucket": CODE_BUCKET, "SpoolBucketName": "<SpoolBucketName>"}
        if worker == STORE_REPORTER:
            # docs/deploy.md: a worker with report_to "store" gets the worker assistant's grants.
            params |= {"ReportsToStore": "true", "AlertsTopicArn": "<AlertsTopicArn>"} | layout
        yield (
            "sosw-worker-" + worker.replace("_", "-"),
            repo / "cloudformation/sosw-example-worker.yaml",
            params,
            ["CAPABILITY_IAM"],
        )


# ---- 1. pre-flight ----


def check_parameters(stack, template, params):
    declared = template.get("Parameters", {})
    for name in params:
        if name not in declared:
            fail(f"{stack}: parameter {name} is not declared by the template")
    for name, spec in declared.items():
        if name not in params and "Default" not in spec:
            fail(f"{stack}: parameter {name} has no default and is not given")
        value = str(params.get(name, spec.get("Default")))
        values = value.split(",") if spec.get("Type") == "CommaDelimitedList" else [value]
        for v in values:
            allowed = spec.get("AllowedValues")
            if allowed is not None and v not in [str(a) for a in allowed]:
                fail(f"{stack}: parameter {name}={v!r} is not one of its AllowedValues {allowed}")
            pattern = spec.get("AllowedPattern")
            if pattern is not None and not re.fullmatch(pattern, v):
                fail(f"{stack}: parameter {name}={v!r} does not match its AllowedPattern {pattern}")
            if spec.get("Type") == "Number":
                number = float(v)
                if "MinValue" in spec and number < float(spec["MinValue"]):
                    fail(f"{stack}: parameter {name}={v} is below its MinValue {spec['MinValue']}")
                if "MaxValue" in spec and number > float(spec["MaxValue"]):
                    fail(f"{stack}: parameter {name}={v} is above its MaxValue {spec['MaxValue']}")


def check_capabilities(stack, template, capabilities):
    iam = [r for r in template.get("Resources", {}).values() if r["Type"].startswith("AWS::IAM::")]
    named = [
        r
        for r in iam
        if any(k in r.get("Properties", {}) for k in ("RoleName", "PolicyName", "UserName", "GroupName"))
        and r["Type"] != "AWS::IAM::Policy"
    ]
    if named and "CAPABILITY_NAMED_IAM" not in capabilities:
        fail(f"{stack}: the template names IAM resources; CAPABILITY_NAMED_IAM must be given")
    if iam and not {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"} & set(capabilities):
        fail(f"{stack}: the template creates IAM resources; CAPABILITY_IAM must be given")


def substitute(value, params, template):
    """A function's Code property resolved with the parameters (enough for S3Bucket/S3Key)."""
    if isinstance(value, Tagged):
        if value.tag == "Ref":
            return str(params.get(value.value, template["Parameters"][value.value].get("Default")))
        if value.tag == "Sub":
            return re.sub(
                r"\$\{([^}]+)\}",
                lambda m: str(params.get(m.group(1), template["Parameters"][m.group(1)].get("Default"))),
                value.value,
            )
        fail(f"cannot resolve !{value.tag} in a function's Code")
    return value


def bundle_keys(stack, template, params):
    for logical, res in template.get("Resources", {}).items():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        code = res["Properties"]["Code"]
        yield logical, substitute(code["S3Bucket"], params, template), substitute(code["S3Key"], params, template)


def check_bundles(c, stack, template, params):
    for logical, bucket, key in bundle_keys(stack, template, params):
        try:
            c["s3"].head_object(Bucket=bucket, Key=key)
        except c["s3"].exceptions.ClientError:
            fail(f"{stack}: {logical}'s bundle s3://{bucket}/{key} does not exist (upload `make package`'s dist/current)")


# ---- 2. create ----


def create(c, stack, template_path, params, capabilities):
    cfn = c["cloudformation"]
    cfn.create_stack(
        StackName=stack,
        TemplateBody=template_path.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=capabilities,
    )
    return wait(cfn, stack, "CREATE_COMPLETE")


def wait(cfn, stack, want):
    deadline = time.time() + 120
    while time.time() < deadline:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        status = described["StackStatus"]
        if status == want:
            return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        if status.endswith("FAILED") or "ROLLBACK" in status:
            fail(f"{stack}: {status}: {described.get('StackStatusReason', '')}")
        time.sleep(0.5)
    fail(f"{stack}: not {want} after 120 s")


# ---- 3 and 4. read back and check ----


def stack_functions(c, stack):
    resources = c["cloudformation"].describe_stack_resources(StackName=stack)["StackResources"]
    return {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in resources
        if r.get("ResourceType") == "AWS::Lambda::Function"
    }


def check_event_invoke_configs(c, stack):
    """Every function of the stack has an EventInvokeConfig with no Lambda retry and a maximum event
    age. moto keeps no EventInvokeConfig, so the deployed template is what is read."""
    body = c["cloudformation"].get_template(StackName=stack)["TemplateBody"]
    template = yaml.load(body, Loader=Loader) if isinstance(body, str) else body
    resources = template["Resources"]
    configs = {}
    for logical, res in resources.items():
        if res["Type"] == "AWS::Lambda::EventInvokeConfig":
            fn = res["Properties"]["FunctionName"]
            name = fn.value if isinstance(fn, Tagged) else fn
            configs[name] = res["Properties"]
    found = {}
    for logical, res in resources.items():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        props = configs.get(logical)
        if props is None:
            fail(f"{stack}: function {logical} has no AWS::Lambda::EventInvokeConfig (Lambda would retry its failed async invocations twice)")
        if str(props.get("MaximumRetryAttempts")) != "0":
            fail(f"{stack}: {logical}'s EventInvokeConfig has MaximumRetryAttempts {props.get('MaximumRetryAttempts')}, not 0")
        if "MaximumEventAgeInSeconds" not in props:
            fail(f"{stack}: {logical}'s EventInvokeConfig has no MaximumEventAgeInSeconds")
        found[logical] = props
    return found


def role_policies(c, role_arn):
    role = role_arn.rsplit("/", 1)[1]
    out = {}
    for name in c["iam"].list_role_policies(RoleName=role)["PolicyNames"]:
        doc = c["iam"].get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(doc, str):
            # moto keeps a CloudFormation-made inline policy as a Python repr, not JSON.
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError:
                doc = ast.literal_eval(doc)
        # moto keeps a statement that is `!If [cond, ..., !Ref AWS::NoValue]` with a false condition as
        # null in the list; AWS drops it (the essentials' layout statements are written so).
        doc["Statement"] = [s for s in doc["Statement"] if s is not None]
        out[name] = aws_log_group_arns(doc)
    return out


def aws_log_group_arns(doc):
    """moto's LogGroup.Arn lacks the `:*` AWS gives (`...:log-group:<name>:*`, which covers the
    group's streams); put it back so the policy reads as it will on AWS."""

    def fix(resource):
        if re.fullmatch(r"arn:[^:]+:logs:[^:]*:[^:]*:log-group:[^:*]+", resource):
            return resource + ":*"
        return resource

    for statement in doc["Statement"]:
        res = statement.get("Resource")
        statement["Resource"] = [fix(r) for r in res] if isinstance(res, list) else fix(res)
    return doc


def check_policy(function, name, doc):
    findings = analyze_policy_string(json.dumps(doc)).findings
    if findings:
        detail = "; ".join(f"{f.issue} {f.detail}" for f in findings)
        fail(f"{function}: role policy {name}: {detail}")


def read_back(c, stacks):
    functions = {}
    for stack in stacks:
        for logical, name in stack_functions(c, stack).items():
            conf = c["lambda"].get_function_configuration(FunctionName=name)
            concurrency = c["lambda"].get_function_concurrency(FunctionName=name).get(
                "ReservedConcurrentExecutions"
            )
            functions[name] = {
                "stack": stack,
                "logical": logical,
                "arn": conf["FunctionArn"],
                "runtime": conf["Runtime"],
                "timeout": conf["Timeout"],
                "memory": conf["MemorySize"],
                "environment": conf.get("Environment", {}).get("Variables", {}),
                "reserved_concurrency": concurrency,
                "role": conf["Role"],
                "policies": role_policies(c, conf["Role"]),
            }
    return functions


def check_environment(c, functions):
    tables = set(c["dynamodb"].list_tables()["TableNames"])
    for name, f in functions.items():
        env = f["environment"]
        table = env.get("SOSW_CONFIG_TABLE", "config")
        if table not in tables:
            fail(f"{name}: SOSW_CONFIG_TABLE={table} names no table the stacks made ({sorted(tables)})")
        rule = env.get("SOSW_SCHEDULE_RULE")
        if rule is not None:
            c["events"].describe_rule(Name=rule)  # raises when the rule does not exist


# ---- 5. the run: the bootstraps as the stacks' functions ----


def put_config_rows(c, outputs):
    """docs/deploy.md, section 5 (the operator's calls: not recorded)."""
    spool = outputs["sosw-essentials"]["SpoolBucketName"]
    topic = outputs["sosw-essentials"]["AlertsTopicArn"]
    labourers = {
        # Retries after 1-2 s instead of sosw's default 30 s backoff: the flaky job's tasks die in
        # three ticks of the schedule, not in minutes.
        w: {
            "arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{w}",
            "max_simultaneous_invocations": 5,
            "retry": {"policy": "exponential", "base_secs": 1, "cap_secs": 2},
            # Far above what the run needs: there so the orchestrator takes its grants from the shared
            # rate log (sosw_ecology) and its role is checked for those calls.
            "rate_limit": {"tasks": 10000, "period_secs": 60},
        }
        for w in WORKERS
    }
    # The steady worker runs the adaptive controller, so the worker assistant's outcome counters and
    # the orchestrator's shared controller state go through their roles too (the flaky one, whose
    # tasks mostly fail, would open the breaker and slow the run down).
    labourers[WORKERS[0]]["ecology"] = {"policy": "adaptive", "window_secs": 2}
    rows = {
        "sosw_essential_config": {"task_config": {"max_attempts": 3, "labourers": labourers}},
        "sosw_scheduler_config": {
            "queue_bucket": spool,
            "s3_prefix": "sosw/scheduler",
            "job_schema": {"chunkable_attrs": [["topic", {}], ["word", {}]]},
            "task_config": {},
        },
        "sosw_scavenger_config": {"sns_config": {"recipient": topic}, "task_config": {}},
        "sosw_worker_assistant_config": {"sns_config": {"recipient": topic}, "task_config": {}},
        "sosw_orchestrator_config": {"task_config": {}},
    }
    for w in WORKERS:
        rows[f"{w}_config"] = {"payload_bucket": spool}
    rows[f"{STORE_REPORTER}_config"]["report_to"] = "store"
    for name, value in rows.items():
        c["dynamodb"].put_item(
            TableName="config",
            Item={"env": {"S": "production"}, "config_name": {"S": name}, "config_value": {"S": json.dumps(value)}},
        )


def scheduled_event(rule_arn):
    """The event EventBridge sends a scheduled rule's targets."""
    return {
        "version": "0",
        "id": str(time.time()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    }


def handover(c, hosts, repo, outputs):
    """A scheduler handing a job over to its sibling: its config row's shutdown_period set to 3 s
    short of the function's timeout and its writes paced to 5 a second (new containers read it), the
    flaky job submitted; each run writes what it can in its 3 s, spools the rest and invokes itself,
    after reading its rule (SOSW_SCHEDULE_RULE)."""
    scheduler = hosts["sosw_scheduler"]
    row = c["dynamodb"].get_item(
        TableName="config", Key={"env": {"S": "production"}, "config_name": {"S": "sosw_scheduler_config"}}
    )["Item"]
    config = json.loads(row["config_value"]["S"])
    config["shutdown_period"] = scheduler.conf["timeout"] - 3
    config["max_writes_per_second"] = 5  # about 15 tasks per 3 s run: the 36 take three runs
    config["enqueue_batch_size"] = 5
    row["config_value"] = {"S": json.dumps(config)}
    c["dynamodb"].put_item(TableName="config", Item=row)
    scheduler.recycle()
    job = json.loads((repo / "examples/jobs/flaky_hashtags.json").read_text())
    kind, body = scheduler.invoke(job)
    print(f"sosw_scheduler <- examples/jobs/flaky_hashtags.json (3 s before its shutdown period): {kind} {body.decode(errors='replace')[:300]}")
    if kind != "response":
        fail(f"the scheduler answered the flaky job with {kind}: {body.decode(errors='replace')[:500]}")
    labourer = job["job"]["lambda_name"]
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(1)
        if scheduler.in_flight == 0:
            break
    queued = queued_count(c, labourer)
    print(f"after the handover: {queued} task(s) of {labourer} queued, scheduler invocations: {scheduler.invocations}")
    if scheduler.invocations < 3:
        fail("the scheduler did not hand the flaky job over to a sibling")
    return json.loads(body)["job_id"]


def count_items(c, table, condition=None, values=None):
    """Items of `table` (all pages of a scan), those matching the filter `condition` if given."""
    kwargs = {"TableName": table, "Select": "COUNT"}
    if condition:
        kwargs |= {"FilterExpression": condition, "ExpressionAttributeValues": values}
    return sum(page["Count"] for page in c["dynamodb"].get_paginator("scan").paginate(**kwargs))


def count_tasks(c, table, condition, values):
    """Tasks in the items of the lean `table` matching the filter `condition`: a pack of queued tasks
    (`pt`, docs/layout-lean.md) counts each task it holds, any other item one."""
    kwargs = {"TableName": table, "FilterExpression": condition, "ExpressionAttributeValues": values,
              "ProjectionExpression": "pt"}
    return sum(len(item["pt"]["M"]) if "pt" in item else 1
               for page in c["dynamodb"].get_paginator("scan").paginate(**kwargs)
               for item in page["Items"])


def closed_count(c):
    """Closed tasks in all, on the deployed layout."""
    if LAYOUT == "lean":
        return count_items(c, LEAN_TABLE, "begins_with(pk, :c)", {":c": {"S": "c#"}})
    return count_items(c, "sosw_closed_tasks")


def live_count(c):
    """Live tasks (queued, invoked, waiting for retry), on the deployed layout."""
    if LAYOUT == "lean":
        prefixes = {":q": {"S": "q#"}, ":r": {"S": "r#"}, ":w": {"S": "w#"}}
        return count_tasks(c, LEAN_TABLE, "begins_with(pk, :q) OR begins_with(pk, :r) OR begins_with(pk, :w)", prefixes)
    return count_items(c, "sosw_tasks")


def queued_count(c, labourer):
    """Queued tasks of `labourer`, on the deployed layout."""
    if LAYOUT == "lean":
        return count_tasks(c, LEAN_TABLE, "begins_with(pk, :q)", {":q": {"S": f"q#{labourer}#"}})
    return c["dynamodb"].query(
        TableName="sosw_tasks",
        IndexName="sosw_tasks_greenfield",
        KeyConditionExpression="labourer_id = :l",
        ExpressionAttributeValues={":l": {"S": labourer}},
        Select="COUNT",
    )["Count"]


def closed_with_status(c, status):
    """Closed tasks whose `labourer_id_task_status` is `status`, on the deployed layout."""
    if LAYOUT == "lean":
        return count_items(c, LEAN_TABLE, "begins_with(pk, :c) AND labourer_id_task_status = :s",
                           {":c": {"S": "c#"}, ":s": {"S": status}})
    return c["dynamodb"].query(
        TableName="sosw_closed_tasks", IndexName="labourer_task_status_with_time",
        KeyConditionExpression="labourer_id_task_status = :l",
        ExpressionAttributeValues={":l": {"S": status}}, Select="COUNT")["Count"]


def job_state(c, job_id):
    job = c["dynamodb"].get_item(TableName="sosw_jobs", Key={"job_id": {"S": job_id}}).get("Item", {})
    return job.get("status", {}).get("S")


def ticks(c, hosts, rule, targets, job_id, until, deadline):
    """What the rule does every minute: each target invoked asynchronously with the scheduled event;
    the next tick once this tick's runs ended (the orchestrator works until 10 s before its timeout),
    until `until(status, closed, queued)` holds. Returns the number of ticks."""
    tick = 0
    while True:
        tick += 1
        for arn in targets:
            status, _, _ = rehearsal_lambda.invoke_api(arn, "Event", scheduled_event(rule["Arn"]))
            if status != 202:
                fail(f"the rule's target {arn} answered {status} to an Event invocation")
        time.sleep(1)
        while any(hosts[rehearsal_lambda.function_name(a)].in_flight for a in targets):
            time.sleep(0.5)
        status = job_state(c, job_id)
        closed = closed_count(c)
        queued = live_count(c)
        print(f"  tick {tick}: job {job_id} {status}, {closed} closed in all, {queued} live")
        if until(status, closed, queued):
            return tick
        if time.time() > deadline:
            logs = os.environ.get("SOSW_REHEARSE_LOGS", "/tmp")
            fail(f"job {job_id} is {status} with {closed} closed tasks at the deadline (function logs: {logs})")


def alerts_subscriber(c, topic):
    """An SQS queue subscribed to the alerts topic (the operator's subscription, as docs/deploy.md
    suggests an e-mail one): what reaches it is what the topic delivered."""
    url = c["sqs"].create_queue(QueueName="sosw-rehearsal-alerts")["QueueUrl"]
    arn = c["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    c["sns"].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "false"})
    return url


def drain(c, url):
    out = []
    while True:
        got = c["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            c["sqs"].delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def operator_cli(args, repo, endpoint, log):
    """`sosw <args> --aws` as the operator runs it (docs/deploy.md): the sosw CLI built beside the
    bootstraps, through a recording proxy of its own (its calls are the operator's, not a role's)."""
    import subprocess

    proxy = rehearsal_lambda.recording_proxy(endpoint, log, "operator")
    target = Path(os.environ.get("CARGO_TARGET_DIR", repo / "target"))
    # The CLI of the build the bundles come from (scripts/rehearse.sh names it), else the newest one.
    named = os.environ.get("SOSW_REHEARSE_CLI")
    candidates = [Path(named)] if named else sorted(
        (p for p in [target / "release/sosw", target / "debug/sosw"] if p.exists()),
        key=lambda p: p.stat().st_mtime, reverse=True)
    cli = next((p for p in candidates if p.exists()), None)
    if cli is None:
        fail(f"the sosw CLI is not built in {target} (cargo build -p sosw-essentials --bin sosw)")
    env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.server_address[1]}", AWS_REGION=REGION,
               AWS_ACCESS_KEY_ID="rehearsal", AWS_SECRET_ACCESS_KEY="rehearsal", SOSW_CONFIG_TABLE="config",
               SOSW_CONFIG_ENV="production", SOSW_S3_FORCE_PATH_STYLE="true",
               SOSW_LAYOUT=LAYOUT)  # docs/deploy.md: the operator sets the layout in the shell
    try:
        done = subprocess.run([str(cli), "--aws", *args], env=env, capture_output=True, text=True, timeout=120)
    finally:
        proxy.shutdown()
    print(f"operator: sosw --aws {' '.join(args)} -> exit {done.returncode}: {done.stdout.strip()[:400]}")
    if done.returncode != 0:
        fail(f"sosw --aws {' '.join(args)} failed: {done.stderr.strip()[:800]}")
    return done.stdout


def invoke_settings(c, conf, invoke_configs):
    """A function's EventInvokeConfig as its stack resolved it (parameters and references), and its
    on-failure destination's ARN."""
    props = invoke_configs.get(conf["stack"], {}).get(conf["logical"], {})
    stack = c["cloudformation"].describe_stacks(StackName=conf["stack"])["Stacks"][0]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId")
        for r in c["cloudformation"].describe_stack_resources(StackName=conf["stack"])["StackResources"]
        if "LogicalResourceId" in r
    }

    def resolve(value):
        if isinstance(value, Tagged) and value.tag == "Ref":
            return params.get(value.value, physical.get(value.value))
        return value

    settings = {k: resolve(v) for k, v in props.items() if k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")}
    destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    if destination is None:
        return settings, None
    arn = resolve(destination)
    if not arn or not str(arn).startswith("arn:"):
        fail(f"{conf['stack']}: {conf['logical']}'s on-failure destination {destination} resolves to no ARN ({arn!r})")
    return settings, arn


def run(c, args, functions, outputs, repo, invoke_configs):
    import tempfile
    import zipfile

    put_config_rows(c, outputs)
    unzipped = Path(tempfile.mkdtemp(prefix="sosw-rehearsal-"))
    log, hosts = [], {}
    try:
        for name, conf in functions.items():
            with zipfile.ZipFile(Path(args.bundles) / f"{name}.zip") as z:
                z.extractall(unzipped / name)
            bootstrap = unzipped / name / "bootstrap"
            bootstrap.chmod(0o755)
            invoke_config, on_failure = invoke_settings(c, conf, invoke_configs)
            hosts[name] = rehearsal_lambda.Function(
                name, conf, str(bootstrap), args.endpoint, log, invoke_config, on_failure
            )
        alerts = alerts_subscriber(c, outputs["sosw-essentials"]["AlertsTopicArn"])
        job = json.loads((repo / "examples/jobs/hashtags.json").read_text())
        kind, body = hosts["sosw_scheduler"].invoke(job)
        print(f"sosw_scheduler <- examples/jobs/hashtags.json: {kind} {body.decode(errors='replace')[:300]}")
        if kind != "response":
            fail(f"the scheduler answered the tutorial job with {kind}: {body.decode(errors='replace')[:500]}")
        job_id = json.loads(body)["job_id"]
        rule = c["events"].describe_rule(Name="sosw-essentials")
        targets = [t["Arn"] for t in c["events"].list_targets_by_rule(Rule="sosw-essentials")["Targets"]]
        deadline = time.time() + args.run_seconds
        print("the tutorial job, the rule's targets fired as EventBridge fires them:")
        tick = ticks(c, hosts, rule, targets, job_id, lambda st, closed, q: st == "finished" and closed == 36, deadline)
        tasks = 36

        # The flaky job: handed over to a sibling, then run until its `racing` tasks are dead.
        flaky_id = handover(c, hosts, repo, outputs)
        flaky = "sosw_tutorial_flaky_hashtags"
        dead_labourer = f"{flaky}_0"

        def dead_count():
            return closed_with_status(c, dead_labourer)

        print("the flaky job, until its tasks are closed or dead:")
        tick += ticks(c, hosts, rule, targets, flaky_id, lambda st, closed, q: st in ENDED, deadline)
        dead = dead_count()
        messages = drain(c, alerts)
        dead_alerts = [m for m in messages if m.get("Subject") == "``sosw`` Dead Task"]
        print(f"flaky job finished: {dead} dead task(s); the alerts topic delivered {len(messages)} message(s), "
              f"{len(dead_alerts)} dead-task alert(s)")
        if dead == 0:
            fail("the flaky job finished with no dead task (its `racing` tasks always fail)")
        if len(dead_alerts) != dead:
            fail(f"{dead} dead tasks but {len(dead_alerts)} dead-task alerts reached the topic's subscriber: {messages[:3]}")
        kinds = {"job events": [], "on-failure records": [], "other": []}
        for m in messages:
            if m in dead_alerts:
                continue
            try:
                body = json.loads(m.get("Message", ""))
            except ValueError:
                body = None
            if isinstance(body, dict) and "requestContext" in body:
                kinds["on-failure records"].append(body)
            elif isinstance(body, dict) and str(body.get("event", "")).startswith("job_"):
                kinds["job events"].append(body["event"])
            else:
                kinds["other"].append(m)
        print(f"  besides: job events {kinds['job events']}")
        if kinds["on-failure records"] or kinds["other"]:
            fail(f"unexpected messages on the alerts topic: Lambda on-failure records {kinds['on-failure records'][:3]}, "
                 f"others {kinds['other'][:3]}")

        # Redrive, as the operator would: the dead tasks back in the queue, attempted again.
        invoked_before = hosts[flaky].invocations
        operator_cli(["redrive", flaky], repo, args.endpoint, log)
        if job_state(c, flaky_id) in ENDED:
            fail(f"job {flaky_id} still says finished after its dead tasks were redriven")
        print("the redriven tasks, until they are dead again:")
        tick += ticks(c, hosts, rule, targets, flaky_id, lambda st, closed, q: st in ENDED, deadline)
        again = hosts[flaky].invocations - invoked_before
        redead = len([m for m in drain(c, alerts) if m.get("Subject") == "``sosw`` Dead Task"])
        print(f"redrive: {again} more invocation(s) of {flaky}; {redead} new dead-task alert(s)")
        if again < dead:
            fail(f"{dead} tasks were redriven but {flaky} was invoked only {again} more time(s)")
        for name, host in hosts.items():
            failures = host.async_failures if host.on_failure else []
            if failures or host.init_errors:
                fail(f"{name}: failed asynchronous invocations {failures[:3]}, init errors {host.init_errors[:3]}")
    except RehearsalFailed as failure:
        # The calls made until the failure are still checked: a denied call is often its cause.
        _, denied = rehearsal_lambda.least_privilege(functions, log)
        if denied:
            fail(f"{failure}\ncalls the role does not allow (made before that):\n  " + "\n  ".join(denied))
        raise
    finally:
        for host in hosts.values():
            host.stop()
    report, denied = rehearsal_lambda.least_privilege(functions, log)
    for name, r in sorted(report.items()):
        if not r["calls"]:
            continue
        print(f"{name}: {len(r['calls'])} distinct call(s)")
        for call in r["calls"]:
            print(f"  {call['action']} {call['resource']} <- {', '.join(call['allowed_by']) or 'DENIED'}")
        print(f"  grants never used: {', '.join(r['unused_grants']) or 'none'}")
    if denied:
        fail("calls the role does not allow:\n  " + "\n  ".join(denied))
    # The worker with report_to "store" closed its tasks itself: writes to the task table, and never
    # an invocation of the worker assistant.
    own = report[STORE_REPORTER]["calls"]
    task_table = "sosw_lean" if LAYOUT == "lean" else "sosw_tasks"
    if not any(c["action"].startswith("dynamodb:") and c["resource"].endswith(f"table/{task_table}") for c in own):
        fail(f"{STORE_REPORTER} reports to the store but made no call on {task_table}: {own}")
    if any(c["action"] == "lambda:InvokeFunction" for c in own):
        fail(f"{STORE_REPORTER} reports to the store but invoked a function: {own}")
    calls = {n: {"invocations": h.invocations, "throttles": h.throttles, "sandboxes": h.started,
                 "failed_async": len(h.async_failures)} for n, h in hosts.items()}
    return {"least_privilege": report, "tutorial_closed_tasks": tasks, "ticks": tick, "functions": calls}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", required=True, help="moto server URL")
    parser.add_argument("--bundles", required=True, help="folder of <function>.zip (dist/current)")
    parser.add_argument("--report", help="write the JSON report here")
    parser.add_argument("--no-run", action="store_true", help="stop after the stacks' checks")
    parser.add_argument("--run-seconds", type=int, default=600, help="give up on the job after this long")
    parser.add_argument("--layout", choices=["sosw07", "lean"], default="sosw07",
                        help="the stacks' Layout parameter (docs/deploy.md, \"Which table layout\")")
    args = parser.parse_args()
    global LAYOUT
    LAYOUT = args.layout
    print(f"layout: {LAYOUT}")
    repo = Path(__file__).resolve().parent.parent
    c = clients(args.endpoint)
    started = time.time()
    # A fresh account: the stacks' names and physical names are fixed.
    urllib.request.urlopen(urllib.request.Request(f"{args.endpoint}/moto-api/reset", method="POST"))

    # Another team's rule, listed before sosw's: a sibling guard that walked the account's rules
    # (ListRules, then ListTargetsByRule on each) would be denied on it.
    c["events"].put_rule(Name="aaa-another-teams-rule", ScheduleExpression="rate(5 minutes)")
    c["events"].put_targets(Rule="aaa-another-teams-rule", Targets=[
        {"Id": "1", "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:another-teams-function"}])
    c["s3"].create_bucket(Bucket=CODE_BUCKET)
    bundles = sorted(Path(args.bundles).glob("*.zip"))
    for zip_path in bundles:
        c["s3"].upload_file(str(zip_path), CODE_BUCKET, CODE_PREFIX + zip_path.name)
    print(f"uploaded {len(bundles)} bundle(s) to s3://{CODE_BUCKET}/{CODE_PREFIX}")

    outputs, stacks = {}, []
    for stack, template_path, params, capabilities in deploys(repo):
        # "<Output>": that output of the essentials' stack, deployed before the workers.
        params = {
            k: (outputs["sosw-essentials"][v[1:-1]] if v.startswith("<") and v.endswith(">") else v)
            for k, v in params.items()
        }
        template = load_template(template_path)
        check_parameters(stack, template, params)
        check_capabilities(stack, template, capabilities)
        check_bundles(c, stack, template, params)
        t0 = time.time()
        outputs[stack] = create(c, stack, template_path, params, capabilities)
        stacks.append(stack)
        print(f"{stack}: CREATE_COMPLETE in {time.time() - t0:.1f} s ({template_path.name})")

    # docs/deploy.md, step 6: the same essentials stack with the schedule on.
    essentials = next(d for d in deploys(repo) if d[0] == "sosw-essentials")
    params = dict(essentials[2], ScheduleState="ENABLED")
    check_parameters("sosw-essentials", load_template(essentials[1]), params)
    c["cloudformation"].update_stack(
        StackName="sosw-essentials",
        TemplateBody=essentials[1].read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=essentials[3],
    )
    wait(c["cloudformation"], "sosw-essentials", "UPDATE_COMPLETE")
    rule = c["events"].describe_rule(Name="sosw-essentials")
    if rule["State"] != "ENABLED":
        fail(f"sosw-essentials: the rule is {rule['State']} after ScheduleState=ENABLED")
    targets = c["events"].list_targets_by_rule(Rule="sosw-essentials")["Targets"]

    invoke_configs = {s: check_event_invoke_configs(c, s) for s in stacks}
    functions = read_back(c, stacks)
    for name, f in functions.items():
        for policy, doc in f["policies"].items():
            check_policy(name, policy, doc)
    check_environment(c, functions)

    report = {
        "stacks": stacks,
        "tables": c["dynamodb"].list_tables()["TableNames"],
        "rule": {"name": rule["Name"], "state": rule["State"], "targets": [t["Arn"] for t in targets]},
        "topics": [t["TopicArn"] for t in c["sns"].list_topics()["Topics"]],
        "functions": {
            n: {k: v for k, v in f.items() if k != "policies"} | {"policy_statements": sum(len(d["Statement"]) for d in f["policies"].values())}
            for n, f in functions.items()
        },
        "event_invoke_configs": {s: {k: {kk: str(vv) for kk, vv in v.items() if kk != "DestinationConfig"} for k, v in cfg.items()} for s, cfg in invoke_configs.items()},
        "seconds": round(time.time() - started, 1),
    }
    for name, f in sorted(functions.items()):
        print(
            f"{name}: {f['runtime']}, {f['memory']} MB, {f['timeout']} s, reserved {f['reserved_concurrency']}, "
            f"env {sorted(f['environment'])}, {report['functions'][name]['policy_statements']} policy statements"
        )
    print(f"rule {rule['Name']} {rule['State']} -> {[t['Arn'].rsplit(':', 1)[1] for t in targets]}")
    print(f"tables {sorted(report['tables'])}")
    if not args.no_run:
        report["run"] = run(c, args, functions, outputs, repo, invoke_configs)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2, default=str))
    done = "stacks, pre-flight and read-back checks" + ("" if args.no_run else ", the tutorial job, least privilege")
    print(f"rehearsal: {done} passed in {time.time() - started:.1f} s")


if __name__ == "__main__":
    try:
        main()
    except RehearsalFailed as e:
        print(f"rehearsal FAILED: {e}", file=sys.stderr)
        sys.exit(1)
