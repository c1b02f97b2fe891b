#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium driven over the DevTools protocol.

During a local run of the flaky tutorial job (36 tasks; the two for the word `racing` always fail and
die after 3 attempts) it watches the overview reload itself and the job's progress advance, opens the
job, sees the dead tasks with their errors, presses "redrive" and sees them queued again. Saves a
screenshot of the overview.

    dashboard_browser_test.py --sosw target/debug/sosw --chromium chromium --screenshot out.png

Run by scripts/dashboard-browser-test.sh (which installs Chromium and websocket-client). Exits non-zero
naming the step that failed.
"""

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # websocket-client

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAKY = "sosw_tutorial_flaky_hashtags"


def fail(message):
    print(f"dashboard browser test: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def step(message):
    print(f"dashboard browser test: {message}", flush=True)


def slow_configs(directory):
    """The built-in local configs with the flaky labourer slowed down, so a run lasts long enough to
    watch (about 30 s): 2 at a time, 1 s of work per task."""
    source = os.path.join(REPO, "examples", "configs", "local")
    configs = os.path.join(directory, "configs")
    shutil.copytree(source, configs)
    path = os.path.join(configs, "sosw_essential_config.json")
    with open(path) as f:
        essential = json.load(f)
    essential["task_config"]["labourers"][FLAKY]["max_simultaneous_invocations"] = 2
    with open(path, "w") as f:
        json.dump(essential, f)
    path = os.path.join(configs, "sosw_local_config.json")
    with open(path) as f:
        local = json.load(f)
    local["workers"][FLAKY]["work_ms"] = 1000
    # Paths in the local config are relative to its directory: keep the Python worker's reachable.
    for command in local.get("commands", {}).values():
        command["command"] = [
            os.path.normpath(os.path.join(source, part)) if part.startswith("..") else part
            for part in command["command"]
        ]
    with open(path, "w") as f:
        json.dump(local, f)
    return configs


class Browser:
    """One headless Chromium page over the DevTools protocol."""

    def __init__(self, chromium, profile):
        self.process = subprocess.Popen(
            [
                chromium,
                "--headless=new",
                "--no-sandbox",  # as root (CI), Chromium's sandbox cannot start
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={profile}",
                "--window-size=1280,1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + 60
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if self.process.poll() is not None or time.time() > deadline:
                fail("Chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        self.next_id = 0
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        self.next_id += 1
        message_id = self.next_id
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def navigate(self, url):
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href === " + json.dumps(url))

    def evaluate(self, expression):
        """The value of `expression` in the page; None while the page is between loads."""
        try:
            result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        except RuntimeError:
            return None
        if "exceptionDetails" in result:
            return None
        return result.get("result", {}).get("value")

    def wait_for(self, expression, seconds=60, what=None):
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        fail(f"timed out after {seconds} s waiting for {what or expression}")

    def screenshot(self, path):
        height = self.evaluate("document.documentElement.scrollHeight") or 1000
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1200,
            height=min(int(height) + 20, 2400),
            deviceScaleFactor=1,
            mobile=False,
        )
        time.sleep(0.3)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.ws.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_dashboard(sosw, work, configs):
    process = subprocess.Popen(
        [sosw, "dashboard", "--state", "state.sqlite", "--config", configs, "--bind", "127.0.0.1:0",
         "--refresh", "2", "--sample-every", "1"],
        cwd=work,
        stdout=subprocess.PIPE,
        text=True,
    )
    first = process.stdout.readline()
    if "http://" not in first:
        fail(f"sosw dashboard did not start: {first!r}")
    return process, first.split("http://")[1].split("/")[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sosw", required=True, help="the sosw binary")
    parser.add_argument("--chromium", default="chromium")
    parser.add_argument("--screenshot", required=True, help="where the PNG of the overview goes")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="sosw-dashboard-browser-")
    processes = []
    browser = None
    try:
        configs = slow_configs(work)
        # Chromium first: its start-up does not eat into the run it watches.
        browser = Browser(args.chromium, os.path.join(work, "profile"))
        # Run in the work directory: the state file's name on the page (and the screenshot) is short.
        state = os.path.join(work, "state.sqlite")
        job = os.path.join(REPO, "examples", "jobs", "flaky_hashtags.json")
        run = subprocess.Popen(
            [args.sosw, "local", "run", job, "--state", "state.sqlite", "--config", configs,
             "--plain", "--timeout", "300"],
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(run)
        deadline = time.time() + 60
        while not os.path.exists(state):
            if run.poll() is not None or time.time() > deadline:
                fail(f"the local run made no state file: {run.stdout.read()}")
            time.sleep(0.1)
        dashboard, address = start_dashboard(args.sosw, work, configs)
        processes.append(dashboard)
        step(f"dashboard on {address}, local run of the flaky job under way")

        overview = f"http://{address}/"
        browser.navigate(overview)

        # The page reloads itself (meta refresh) and the job's progress advances while the run goes on.
        job_row = "document.querySelector('tr.job')"
        seen = []
        loads = set()
        deadline = time.time() + 120
        while time.time() < deadline and run.poll() is None:
            state_now = browser.evaluate(
                f"{job_row} && [performance.timeOrigin, +{job_row}.dataset.closed, "
                f"+{job_row}.dataset.total, {job_row}.querySelector('.status').textContent]"
            )
            if state_now:
                origin, closed, total, status = state_now
                loads.add(origin)
                if status == "running" and 0 < closed < total and closed not in seen:
                    seen.append(closed)
                if len(seen) >= 2 and len(loads) >= 2:
                    break
            time.sleep(0.2)
        if len(seen) < 2 or seen[-1] <= seen[0]:
            fail(f"progress did not advance in the browser while the job ran (closed seen: {seen})")
        if len(loads) < 2:
            fail("the overview did not reload itself")
        step(f"progress advanced in the browser: closed {seen[0]} -> {seen[-1]} over {len(loads)} page loads")

        output, _ = run.communicate(timeout=300)
        if run.returncode != 3:
            fail(f"the flaky run should end with 2 dead tasks (exit 3), got {run.returncode}:\n{output}")
        browser.wait_for(
            f"{job_row} && {job_row}.querySelector('.status').textContent === 'finished_with_failures'",
            what="the job finished with failures on the overview",
        )
        browser.wait_for(
            "document.querySelectorAll('#chart-throughput polyline').length === 1",
            what="the throughput chart",
        )
        browser.screenshot(args.screenshot)
        step(f"screenshot of the overview: {args.screenshot}")

        # Open the job: its dead tasks with their errors.
        browser.evaluate(f"{job_row}.querySelector('a').click()")
        browser.wait_for("location.pathname.startsWith('/jobs/')", what="the job page")
        dead = browser.wait_for(
            "document.querySelectorAll('#failures tr.task.dead').length === 2 && "
            "[...document.querySelectorAll('#failures tr.task.dead')].map(r => "
            "[r.dataset.task, r.querySelector('.error').textContent, r.querySelector('.payload').textContent])",
            what="two dead tasks on the job page",
        )
        for task, error, payload in dead:
            if "racing" not in payload or not error.strip():
                fail(f"dead task {task} should show its error and the word racing: {error!r} {payload!r}")
        step(f"the job page shows the dead tasks: {', '.join(t for t, _, _ in dead)} ({dead[0][1].strip()})")

        # Redrive: the button posts the form (with its CSRF token); the tasks are queued again.
        browser.evaluate("document.querySelector('form[action$=\"/redrive\"] button').click()")
        message = browser.wait_for(
            "location.search.startsWith('?msg=') && document.getElementById('flash').textContent",
            what="the redrive's message",
        )
        if not message.startswith("2 dead task(s)"):
            fail(f"redrive said: {message}")
        browser.wait_for("document.querySelectorAll('#failures tr.task.dead').length === 0",
                         what="no dead tasks left on the job page")
        browser.evaluate("document.getElementById('all-tasks').click()")
        queued = browser.wait_for(
            "location.search === '?tasks=1' && "
            "[...document.querySelectorAll('#tasks tr.task.queued')].map(r => r.dataset.task)",
            what="the job's tasks",
        )
        if sorted(queued) != sorted(t for t, _, _ in dead):
            fail(f"the redriven tasks should be queued: {queued}")
        browser.navigate(overview)
        browser.wait_for(
            f"document.querySelector('tr[data-labourer=\"{FLAKY}\"] .queued').textContent === '2' && "
            f"document.querySelector('tr[data-labourer=\"{FLAKY}\"] .dead').textContent === '0'",
            what="the overview counting 2 queued and 0 dead",
        )
        step(f"redrive: {message}; both tasks queued again")
        print("dashboard browser test: 1 passed, 0 failed")
    finally:
        if browser:
            browser.close()
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
