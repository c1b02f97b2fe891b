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


def serve(handler):
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---- the recording proxy: which action on which resource ----


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
        threading.Thread(target=host.invoke_async, args=(payload,), daemon=True).start()
        return 202, [], b""
    kind, body = host.invoke(payload)
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
            for call in call_of(self.command, self.path, self.headers, body):
                log.append((function,) + call)
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


class Function:
    """One stack function: its bootstrap process, polling this function's Runtime API."""

    def __init__(self, name, conf, bootstrap, moto, log):
        self.name, self.conf, self.bootstrap = name, conf, bootstrap
        self.events = queue.Queue()
        self.answers = {}
        self.done = {}
        self.proxy = recording_proxy(moto, log, name)
        self.runtime = serve(self._runtime_handler())
        self.processes = []
        self.in_flight = 0
        self.lock = threading.Lock()
        # At most this many bootstraps at once (reserved concurrency, else 5 here).
        self.cap = conf.get("reserved_concurrency") or 5
        self.async_failures = []
        self.invocations = 0
        HOSTS[name] = self

    def _runtime_handler(self):
        fn = self

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
                if self.path.endswith("/runtime/invocation/next"):
                    request_id, payload, deadline = fn.events.get()
                    self._reply(200, payload, [
                        ("Lambda-Runtime-Aws-Request-Id", request_id),
                        ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                        ("Lambda-Runtime-Invoked-Function-Arn", fn.conf["arn"]),
                        ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                        ("Content-Type", "application/json"),
                    ])
                else:
                    self._reply(404)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                m = re.search(r"/runtime/invocation/([^/]+)/(response|error)$", self.path)
                if m:
                    fn.answers[m.group(1)] = (m.group(2), body)
                    fn.done[m.group(1)].set()
                    self._reply(202, b"{}")
                elif self.path.endswith("/runtime/init/error"):
                    fn.answers["init"] = ("init-error", body)
                    self._reply(202, b"{}")
                else:
                    self._reply(404)

        return Runtime

    def start(self):
        env = dict(self.conf["environment"])  # what the stack gave the function, nothing of sosw's added
        proxy = f"http://127.0.0.1:{self.proxy.server_address[1]}"
        env.update({
            # What Lambda itself sets in every function's environment.
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.runtime.server_address[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.conf["memory"]),
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
        out = open(logs / f"{self.name}.{len(self.processes)}.log", "wb")
        self.processes.append(subprocess.Popen([self.bootstrap], env=env, stdout=out, stderr=out))

    def recycle(self):
        """New containers: the running bootstraps are stopped (they read their config rows once)."""
        with self.lock:
            for process in self.processes:
                process.kill()
                process.wait()
            self.processes = []

    def invoke_async(self, payload):
        """An Event invocation: no retry (the stacks' EventInvokeConfig says MaximumRetryAttempts 0);
        a failure is kept as the on-failure record."""
        kind, body = self.invoke(payload)
        if kind != "response":
            self.async_failures.append((kind, body.decode(errors="replace")[:300]))

    def invoke(self, payload):
        """A synchronous invocation with the function's timeout: (`response` | `error` | `timeout`,
        body). A new bootstrap starts when every running one is busy, up to the concurrency cap."""
        with self.lock:
            self.invocations += 1
            self.in_flight += 1
            if self.in_flight > len(self.processes) and len(self.processes) < self.cap:
                self.start()
        try:
            return self._invoke(payload)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _invoke(self, payload):
        request_id = str(uuid.uuid4())
        self.done[request_id] = threading.Event()
        deadline = int((time.time() + self.conf["timeout"]) * 1000)
        self.events.put((request_id, json.dumps(payload).encode(), deadline))
        if not self.done[request_id].wait(self.conf["timeout"]):
            return "timeout", b""
        return self.answers.pop(request_id)

    def stop(self):
        for process in self.processes:
            process.kill()
            process.wait()
        self.runtime.shutdown()
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
                    if (st.get("Sid", "?"), a.lower()) not in used:
                        unused.append(f"{st.get('Sid', '?')}: {a}")
        report[name] = {"calls": entries, "unused_grants": unused}
    return report, denied
