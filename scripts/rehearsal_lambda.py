"""The rehearsal's functions: each bootstrap run as the function a stack created, with the environment
read back by GetFunctionConfiguration, behind a Lambda Runtime API, its AWS calls going through a
recording proxy in front of moto, and each recorded call checked against the function's role policy.

Part of `make rehearse` (scripts/rehearse.py). The Runtime API and the proxy are Python's http.server:
the driver is Python already and nothing here needs a Rust build.
"""

import fnmatch
import http.client
import json
import os
import queue
import re
import subprocess
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REGION = "us-east-1"
ACCOUNT = "123456789012"


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A discarded sandbox's bootstrap is gone: its connection breaks, nothing to report.
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def serve(handler):
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---- the recording proxy: which action on which resource ----


# Shard iterators handed out by DynamoDB Streams (GetShardIterator, GetRecords' NextShardIterator),
# with the stream they read: GetRecords names its stream only through one.
STREAM_OF_ITERATOR = {}


def remember_iterators(headers, body, answer):
    """Records the shard iterators in a DynamoDB Streams answer against the stream they read."""
    target = headers.get("X-Amz-Target", "")
    if not target.startswith("DynamoDBStreams_"):
        return
    try:
        request, reply = json.loads(body or b"{}"), json.loads(answer or b"{}")
    except ValueError:
        return
    stream = request.get("StreamArn") or STREAM_OF_ITERATOR.get(request.get("ShardIterator"))
    for key in ("ShardIterator", "NextShardIterator"):
        if stream and reply.get(key):
            STREAM_OF_ITERATOR[reply[key]] = stream


def call_of(method, path, headers, body):
    """(IAM action, resource ARN) of one SDK request, from its SigV4 scope, target and body."""
    auth = headers.get("Authorization", "")
    scope = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/aws4_request", auth)
    service = scope.group(1) if scope else "?"
    target = headers.get("X-Amz-Target", "")
    parsed = urllib.parse.urlsplit(path)
    try:
        doc = json.loads(body) if body and body[:1] == b"{" else {}
    except ValueError:
        doc = {}
    if service == "dynamodb" and target.startswith("DynamoDBStreams_"):
        # DynamoDB Streams signs as dynamodb; IAM scopes its actions to the stream's ARN, which
        # GetRecords names only through its shard iterator (remembered from the answers that gave it).
        action = "dynamodb:" + target.split(".")[-1]
        stream = doc.get("StreamArn") or STREAM_OF_ITERATOR.get(doc.get("ShardIterator"), "?")
        return [(action, stream)]
    if service == "dynamodb":
        action = "dynamodb:" + target.split(".")[-1]
        tables = [doc["TableName"]] if "TableName" in doc else list(doc.get("RequestItems", {}))
        for item in doc.get("TransactItems", []):
            for op in item.values():
                tables.append(op["TableName"])
        arns = []
        for t in tables or ["?"]:
            arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{t}"
            arns.append(arn + f"/index/{doc['IndexName']}" if "IndexName" in doc else arn)
        if target.endswith("TransactWriteItems"):
            # IAM authorizes each item's own action (PutItem, DeleteItem, ...), not TransactWriteItems.
            return [
                ("dynamodb:" + {"Put": "PutItem", "Delete": "DeleteItem", "Update": "UpdateItem",
                                "ConditionCheck": "ConditionCheckItem"}[op],
                 f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{item[op]['TableName']}")
                for item in doc["TransactItems"] for op in item
            ]
        return [(action, arn) for arn in sorted(set(arns))]
    if service == "events":
        name = doc.get("Name") or doc.get("Rule")
        resource = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}" if name else "*"
        return [("events:" + target.split(".")[-1], resource)]
    if service == "sns":
        form = urllib.parse.parse_qs(body.decode() if body else parsed.query)
        return [("sns:" + form.get("Action", ["?"])[0], form.get("TopicArn", ["*"])[0])]
    if service == "lambda":
        m = re.match(r"/2015-03-31/functions/([^/]+)/(invocations|configuration)", parsed.path)
        name = urllib.parse.unquote(m.group(1)) if m else "?"
        if not name.startswith("arn:"):
            name = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        action = {"invocations": "InvokeFunction", "configuration": "GetFunctionConfiguration"}.get(
            m.group(2) if m else "", "?")
        return [("lambda:" + action, name)]
    if service == "s3":
        parts = parsed.path.lstrip("/").split("/", 1)
        bucket, key = parts[0], (parts[1] if len(parts) > 1 else "")
        if key:
            action = {"GET": "GetObject", "HEAD": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject"}[method]
            return [("s3:" + action, f"arn:aws:s3:::{bucket}/{urllib.parse.unquote(key)}")]
        return [("s3:ListBucket", f"arn:aws:s3:::{bucket}")]
    if service == "monitoring":
        return [("cloudwatch:" + (target.split(".")[-1] or "?"), "*")]
    return [(f"{service}:?", path)]


# The functions the rehearsal runs, by name: Lambda Invoke calls for them are answered here, with
# AWS's semantics, instead of by moto (whose Lambda runs code only in Docker).
HOSTS = {}


def function_name(name_or_arn):
    """`f`, `f:qualifier`, `arn:aws:lambda:r:a:function:f[:qualifier]` -> `f`."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn.split(":")[6]
    return name_or_arn.split(":")[0]


def invoke_api(name_or_arn, invocation_type, payload):
    """(status, headers, body) as Lambda's Invoke answers: Event 202 and runs in the background;
    RequestResponse 200, with X-Amz-Function-Error: Unhandled for a function error or a timeout."""
    host = HOSTS.get(function_name(name_or_arn))
    if host is None:
        body = json.dumps({"Type": "User", "message": f"Function not found: {name_or_arn}"}).encode()
        return 404, [("x-amzn-ErrorType", "ResourceNotFoundException")], body
    if invocation_type == "Event":
        with host.lock:
            host.queued_async += 1
        threading.Thread(target=host.invoke_async, args=(payload,), daemon=True).start()
        return 202, [], b""
    kind, body = host.invoke(payload)
    if kind == "throttled":
        body = json.dumps({"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
                           "Type": "User", "message": "Rate Exceeded."}).encode()
        return 429, [("x-amzn-ErrorType", "TooManyRequestsException")], body
    if kind == "response":
        return 200, [("X-Amz-Executed-Version", "$LATEST")], body
    if kind == "timeout":
        body = json.dumps({"errorType": "Sandbox.Timedout",
                           "errorMessage": f"Task timed out after {host.conf['timeout']} seconds"}).encode()
    return 200, [("X-Amz-Function-Error", "Unhandled"), ("X-Amz-Executed-Version", "$LATEST")], body


def recording_proxy(upstream, log, function):
    host = urllib.parse.urlsplit(upstream)

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = read_chunked(self.rfile)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding",)}
            headers["Content-Length"] = str(len(body))
            calls = call_of(self.command, self.path, self.headers, body)
            for call in calls:
                log.append((function,) + call)
            if os.environ.get("SOSW_REHEARSE_TRACE"):
                with open(os.environ["SOSW_REHEARSE_TRACE"], "a") as trace:
                    trace.write(f"{function} {self.command} {self.path[:160]} -> {calls}\n")
            invocation = re.match(r"/2015-03-31/functions/([^/]+)/invocations", self.path)
            if invocation and self.command == "POST":
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    payload = None
                status, extra, data = invoke_api(
                    urllib.parse.unquote(invocation.group(1)),
                    self.headers.get("X-Amz-Invocation-Type", "RequestResponse"),
                    payload,
                )
                self.send_response(status)
                for k, v in extra + [("Content-Type", "application/json")]:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            remember_iterators(self.headers, body, data)
            self.send_response(answer.status)
            for k, v in answer.getheaders():
                if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

    return serve(Proxy)


def read_chunked(stream):
    out = b""
    while True:
        size = int(stream.readline().strip().split(b";")[0], 16)
        if size == 0:
            stream.readline()
            return out
        out += stream.read(size)
        stream.readline()


# ---- the Runtime API of one function ----

# Lambda retries a failed asynchronous invocation after about 1 and then 2 minutes; the rehearsal keeps
# the order and count and scales the waits down.
ASYNC_RETRY_DELAYS = [1.0, 2.0]


class Sandbox:
    """One execution environment: a bootstrap process polling a Runtime API of its own, one
    invocation at a time. Killed on a timeout, as Lambda discards a timed-out environment."""

    def __init__(self, fn, index):
        self.fn = fn
        self.inbox = queue.Queue()
        self.server = serve(self._handler())
        # What the stack gave the function, nothing of sosw's added; as strings, as Lambda gives them
        # (moto keeps the value of a Number parameter, e.g. LeanShards, as a number).
        env = {k: str(v) for k, v in fn.conf["environment"].items()}
        proxy = f"http://127.0.0.1:{fn.proxy.server_address[1]}"
        env.update({
            # What Lambda itself sets in every function's environment.
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.server.server_address[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.conf["memory"]),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "rehearsal",
            "AWS_SECRET_ACCESS_KEY": "rehearsal",
            # The emulator's plumbing: every AWS call to this function's recording proxy, and S3 by path.
            "AWS_ENDPOINT_URL": proxy,
            "SOSW_S3_FORCE_PATH_STYLE": "true",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        })
        logs = Path(os.environ.get("SOSW_REHEARSE_LOGS", "/tmp"))
        self.log = open(logs / f"{fn.name}.{index}.log", "wb")
        self.process = subprocess.Popen([fn.bootstrap], env=env, stdout=self.log, stderr=self.log)

    def _handler(self):
        sandbox = self

        class Runtime(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    return self._reply(404)
                item = sandbox.inbox.get()
                if item is None:  # the sandbox is being discarded
                    return self._reply(410)
                request_id, payload, deadline = item
                self._reply(200, payload, [
                    ("Lambda-Runtime-Aws-Request-Id", request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                    ("Lambda-Runtime-Invoked-Function-Arn", sandbox.fn.conf["arn"]),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                    ("Content-Type", "application/json"),
                ])

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                m = re.search(r"/runtime/invocation/([^/]+)/(response|error)$", self.path)
                if m:
                    sandbox.fn.answer(m.group(1), m.group(2), body)
                    self._reply(202, b"{}")
                elif self.path.endswith("/runtime/init/error"):
                    sandbox.fn.init_errors.append(body.decode(errors="replace")[:300])
                    self._reply(202, b"{}")
                else:
                    self._reply(404)

        return Runtime

    def kill(self):
        self.process.kill()
        self.process.wait()
        self.inbox.put(None)  # frees a handler thread still waiting for an event
        self.server.shutdown()
        self.log.close()


class Function:
    """One stack function: sandboxes started on demand up to its concurrency (reserved concurrency,
    else 5 here), each running the function's bootstrap.

    Invoke semantics kept from AWS: a synchronous call beyond the concurrency is throttled (429); an
    asynchronous one waits for a free sandbox up to its maximum event age; a timeout discards the
    sandbox; a failed asynchronous invocation is retried `MaximumRetryAttempts` times (the stack's
    EventInvokeConfig, Lambda's default 2 without one), then sent to its on-failure destination."""

    def __init__(self, name, conf, bootstrap, moto, log, invoke_config=None, on_failure=None):
        self.name, self.conf, self.bootstrap = name, conf, bootstrap
        self.invoke_config = invoke_config or {}
        self.on_failure = on_failure  # an SNS topic ARN
        self.proxy = recording_proxy(moto, log, name)
        self.lock = threading.Condition()
        self.idle, self.busy = [], set()
        self.started = 0
        self.pending = {}
        self.init_errors = []
        self.cap = conf.get("reserved_concurrency") or 5
        self.async_failures = []
        self.destination_records = []
        self.invocations = 0
        self.throttles = 0
        self.queued_async = 0  # accepted Event invocations not yet finished
        HOSTS[name] = self

    @property
    def in_flight(self):
        """Invocations running or still in the asynchronous queue."""
        with self.lock:
            return len(self.busy) + self.queued_async

    def answer(self, request_id, kind, body):
        waiter = self.pending.get(request_id)
        if waiter is not None:
            waiter[1].extend([kind, body])
            waiter[0].set()

    def _acquire(self, wait_until):
        """A free sandbox (a new one while under the cap), or None once `wait_until` has passed
        (None as `wait_until`: do not wait)."""
        with self.lock:
            while True:
                if self.idle:
                    sandbox = self.idle.pop()
                elif len(self.busy) < self.cap:
                    self.started += 1
                    sandbox = Sandbox(self, self.started)
                else:
                    remaining = None if wait_until is None else wait_until - time.time()
                    if remaining is None or remaining <= 0:
                        return None
                    self.lock.wait(min(remaining, 1.0))
                    continue
                self.busy.add(sandbox)
                return sandbox

    def _release(self, sandbox, keep):
        with self.lock:
            self.busy.discard(sandbox)
            if keep:
                self.idle.append(sandbox)
            self.lock.notify()
        if not keep:
            sandbox.kill()

    def recycle(self):
        """New environments from the next invocation on (the running bootstraps read their config
        rows once, at start)."""
        with self.lock:
            idle, self.idle = self.idle, []
        for sandbox in idle:
            sandbox.kill()

    def invoke(self, payload, wait_until=None):
        """One invocation with the function's timeout: (`response` | `error` | `timeout` |
        `throttled`, body)."""
        sandbox = self._acquire(wait_until)
        if sandbox is None:
            with self.lock:
                self.throttles += 1
            return "throttled", b""
        with self.lock:
            self.invocations += 1
        request_id = str(uuid.uuid4())
        done, answer = threading.Event(), []
        self.pending[request_id] = (done, answer)
        deadline = int((time.time() + self.conf["timeout"]) * 1000)
        sandbox.inbox.put((request_id, json.dumps(payload).encode(), deadline))
        finished = done.wait(self.conf["timeout"])
        del self.pending[request_id]
        if not finished:
            self._release(sandbox, keep=False)
            return "timeout", b""
        self._release(sandbox, keep=True)
        return answer[0], answer[1]

    def invoke_async(self, payload):
        """An Event invocation as Lambda's internal queue runs it."""
        try:
            self._invoke_async(payload)
        finally:
            with self.lock:
                self.queued_async -= 1

    def _invoke_async(self, payload):
        queued = time.time()
        max_age = float(self.invoke_config.get("MaximumEventAgeInSeconds", 21600))
        retries = int(self.invoke_config.get("MaximumRetryAttempts", 2))
        attempts, kind, body = 0, "expired", b""
        while True:
            kind, body = self.invoke(payload, wait_until=queued + max_age)
            if kind == "throttled":
                kind = "expired"  # never found a free sandbox within the event's maximum age
                break
            attempts += 1
            if kind == "response" or attempts > retries:
                break
            time.sleep(ASYNC_RETRY_DELAYS[min(attempts - 1, len(ASYNC_RETRY_DELAYS) - 1)])
            if time.time() - queued > max_age:
                kind = "expired"
                break
        if kind == "response":
            return
        self.async_failures.append((kind, attempts, body.decode(errors="replace")[:300]))
        if self.on_failure:
            self._send_to_destination(payload, kind, attempts, body)

    def _send_to_destination(self, payload, kind, attempts, body):
        """The on-failure record, published with the function's own role (through its recording
        proxy), as Lambda does."""
        record = {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.conf["arn"] + ":$LATEST",
                "condition": "EventAgeExceeded" if kind == "expired" else "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": payload,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": body.decode(errors="replace"),
        }
        form = urllib.parse.urlencode({
            "Action": "Publish", "Version": "2010-03-31", "TopicArn": self.on_failure,
            "Message": json.dumps(record),
        }).encode()
        port = self.proxy.server_address[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        scope = time.strftime("%Y%m%d", time.gmtime())
        conn.request("POST", "/", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"AWS4-HMAC-SHA256 Credential=rehearsal/{scope}/{REGION}/sns/aws4_request",
        })
        answer = conn.getresponse()
        answer.read()
        self.destination_records.append((record["requestContext"]["condition"], answer.status))

    def stop(self):
        with self.lock:
            sandboxes = self.idle + list(self.busy)
            self.idle, self.busy = [], set()
        for sandbox in sandboxes:
            sandbox.kill()
        self.proxy.shutdown()


# ---- least privilege ----


def allowed(policies, action, resource):
    """The statement Sids of `policies` that allow `action` on `resource` (Allow statements only; the
    templates have no Deny)."""
    sids = []
    for doc in policies.values():
        for st in doc["Statement"]:
            if st.get("Effect") != "Allow":
                continue
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            if not any(fnmatch.fnmatch(action.lower(), a.lower()) for a in actions):
                continue
            if any(fnmatch.fnmatchcase(resource, r) for r in resources):
                sids.append(st.get("Sid", "?"))
    return sids


def least_privilege(functions, log):
    """Per function: every (action, resource) called with the statements allowing it, the calls no
    statement allows, and the grants (statement, action) never used."""
    report, denied = {}, []
    for name, f in functions.items():
        calls = sorted({(a, r) for fn, a, r in log if fn == name})
        used = set()
        entries = []
        for action, resource in calls:
            sids = allowed(f["policies"], action, resource)
            if not sids:
                denied.append(f"{name}: {action} on {resource}")
            used.update((sid, action.lower()) for sid in sids)
            entries.append({"action": action, "resource": resource, "allowed_by": sids})
        unused = []
        for doc in f["policies"].values():
            for st in doc["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                for a in actions:
                    # CloudWatch Logs grants are used by Lambda itself (the function's stdout), not by
                    # the function's code, so no recorded call can use them.
                    if a.lower().startswith("logs:"):
                        continue
                    if (st.get("Sid", "?"), a.lower()) not in used:
                        unused.append(f"{st.get('Sid', '?')}: {a}")
        report[name] = {"calls": entries, "unused_grants": unused}
    return report, denied
