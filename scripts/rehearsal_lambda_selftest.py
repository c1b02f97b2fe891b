"""Self-test of the rehearsal's Invoke API (scripts/rehearsal_lambda.py): the AWS semantics the
rehearsal claims, each checked against a small bootstrap that does what its event says (answer, fail,
sleep). Run by scripts/rehearse.sh before the rehearsal; needs no emulator (nothing reaches moto).
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rehearsal_lambda as rl  # noqa: E402

BOOTSTRAP = '''#!{python}
import json, os, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    time.sleep(event.get("sleep", 0))
    kind = "error" if event.get("fail") else "response"
    body = json.dumps({{"errorType": "Boom", "errorMessage": "failed"}} if event.get("fail") else {{"echo": event}})
    urllib.request.urlopen(urllib.request.Request(api + rid + "/" + kind, data=body.encode(), method="POST")).read()
'''

failures = []


def check(what, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {what}" + (f": {detail}" if not ok else ""))
    if not ok:
        failures.append(what)


def main():
    work = Path(tempfile.mkdtemp(prefix="rehearsal-selftest-"))
    os.environ["SOSW_REHEARSE_LOGS"] = str(work)
    bootstrap = work / "bootstrap"
    bootstrap.write_text(BOOTSTRAP.format(python=sys.executable))
    bootstrap.chmod(0o755)
    arn = f"arn:aws:lambda:{rl.REGION}:{rl.ACCOUNT}:function:selftest"
    conf = {"arn": arn, "timeout": 2, "memory": 128, "environment": {}, "reserved_concurrency": 2}
    log = []
    # Upstream is never reached: the bootstrap makes no AWS call, the destination's publish is caught.
    fn = rl.Function("selftest", conf, str(bootstrap), "http://127.0.0.1:9", log,
                     {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 60}, None)
    try:
        status, headers, body = rl.invoke_api("selftest", "RequestResponse", {"x": 1})
        check("RequestResponse answers 200 with the function's answer", status == 200 and json.loads(body) == {"echo": {"x": 1}}, (status, body))
        status, headers, body = rl.invoke_api(arn + ":$LATEST", "RequestResponse", {"x": 2})
        check("an ARN with a qualifier resolves to the function", status == 200, status)
        status, headers, body = rl.invoke_api("selftest", "RequestResponse", {"fail": True})
        check("a function error answers 200 with X-Amz-Function-Error: Unhandled",
              status == 200 and ("X-Amz-Function-Error", "Unhandled") in headers, (status, headers))
        status, headers, body = rl.invoke_api("nope", "RequestResponse", {})
        check("an unknown function answers 404 ResourceNotFoundException", status == 404, status)

        started = fn.started
        status, headers, body = rl.invoke_api("selftest", "RequestResponse", {"sleep": 4})
        check("a timeout answers 200 with Sandbox.Timedout", status == 200 and b"Sandbox.Timedout" in body, (status, body))
        status, _, _ = rl.invoke_api("selftest", "RequestResponse", {"x": 3})
        check("a timed-out sandbox is discarded: the next call starts a new one", status == 200 and fn.started > started, fn.started)

        import threading
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(rl.invoke_api("selftest", "RequestResponse", {"sleep": 1})[0])) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check("beyond the reserved concurrency (2) a synchronous call is throttled (429)", sorted(answers) == [200, 200, 429], answers)

        t0 = time.time()
        status, _, _ = rl.invoke_api("selftest", "Event", {"sleep": 1})
        check("Event answers 202 at once and runs in the background", status == 202 and time.time() - t0 < 0.5, status)
        while fn.in_flight:
            time.sleep(0.1)
        before = fn.invocations
        rl.invoke_api("selftest", "Event", {"fail": True})
        time.sleep(0.2)
        while fn.in_flight:
            time.sleep(0.1)
        check("a failed Event is retried MaximumRetryAttempts (1) times", fn.invocations - before == 2, fn.invocations - before)
        check("then it is kept as a failed asynchronous invocation", len(fn.async_failures) == 1 and fn.async_failures[0][1] == 2, fn.async_failures)
    finally:
        fn.stop()
    if failures:
        print(f"rehearsal_lambda self-test: {len(failures)} failed")
        sys.exit(1)
    print("rehearsal_lambda self-test: passed")


if __name__ == "__main__":
    main()
