//! `sosw dashboard` as a user runs it: its refusals, and its pages on a real port, over the state file
//! after a run of the flaky tutorial job and over DynamoDB Local with `--aws`. HTTP is spoken by hand
//! over a `TcpStream` (no client library): one request per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use super::{
    DynamoJob, FLAKY, HASHTAGS, TempDir, job_id, queue_counts, run, run_flaky_job, sosw, text,
};

/// A running `sosw dashboard`, killed at the end.
struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    address: String,
}

impl Server {
    /// Starts `command` (a `sosw dashboard ... --bind 127.0.0.1:0`) and reads the address it prints.
    fn start(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sosw starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("a line");
        let address = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_owned();
        Server { child, address }
    }

    /// One request; returns the status code, the headers and the body.
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: &str,
    ) -> (u16, String, String) {
        let mut stream = TcpStream::connect(&self.address).expect("connect");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        if !body.is_empty() {
            request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        for header in headers {
            request.push_str(&format!("{header}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let (head, body) = response.split_once("\r\n\r\n").expect("a response");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        (status, head.to_owned(), body.to_owned())
    }

    fn get(&self, path: &str) -> (u16, String, String) {
        self.send("GET", path, &[], "")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CSRF token of the first form on `page`.
fn csrf(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form with the CSRF token")
        .to_owned()
}

#[test]
fn the_dashboard_refuses_an_open_bind_without_a_token_and_a_missing_state_file() {
    let dir = TempDir::new("dash-refuse");
    let state = dir.path("state.sqlite");
    let (code, out, err) = run(&["dashboard", "--bind", "0.0.0.0:0", "--state", text(&state)]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("not a loopback address") && err.contains("--token"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "dashboard",
        "--bind",
        "0.0.0.0:0",
        "--token",
        "short",
        "--state",
        text(&state),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("at least 16"), "{err}");
    let (code, _, err) = run(&[
        "dashboard",
        "--bind",
        "127.0.0.1:0",
        "--state",
        text(&state),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("there is no state file"), "{err}");
}

#[tokio::test]
async fn the_dashboard_shows_the_flaky_run_and_redrives_its_dead_tasks() {
    let dir = TempDir::new("dash-flaky");
    let state = dir.path("state.sqlite");
    let (code, stdout, stderr) = run_flaky_job(&state);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    let job = job_id(&stdout);
    let server = Server::start(sosw(&[
        "dashboard",
        "--bind",
        "127.0.0.1:0",
        "--state",
        text(&state),
    ]));

    let (status, head, page) = server.get("/");
    assert_eq!(status, 200, "{head}\n{page}");
    assert!(head.contains("content-security-policy"), "{head}");
    let row = page
        .lines()
        .find(|l| l.contains(&format!("data-labourer=\"{FLAKY}\"")))
        .expect("the flaky labourer");
    assert!(row.contains("<td class=\"n dead\">2</td>"), "{row}");
    assert!(
        page.contains(&format!(
            "data-job=\"{job}\" data-closed=\"36\" data-total=\"36\""
        )),
        "{page}"
    );
    let (status, _, job_page) = server.get(&format!("/jobs/{job}"));
    assert_eq!(status, 200);
    assert_eq!(
        job_page.matches("<tr class=\"task dead\"").count(),
        2,
        "{job_page}"
    );
    assert!(job_page.contains("racing"), "{job_page}");

    // No state change on GET, none on a POST without the CSRF token.
    let redrive = format!("/jobs/{job}/redrive");
    assert_eq!(server.get(&redrive).0, 405);
    assert_eq!(server.send("POST", &redrive, &[], "csrf=nope").0, 403);
    assert_eq!(queue_counts(&state, FLAKY)[5], "2", "still dead");

    let form = format!("csrf={}", csrf(&job_page));
    let (status, head, _) = server.send("POST", &redrive, &[], &form);
    assert_eq!(status, 303, "{head}");
    assert!(
        head.contains(&format!("location: /jobs/{job}?msg=2+dead")),
        "{head}"
    );
    assert_eq!(queue_counts(&state, FLAKY)[..1], ["2"], "queued again");
    assert_eq!(queue_counts(&state, FLAKY)[5], "0");
    let (_, _, shown) = server.get(&format!("/jobs/{job}?tasks=1"));
    assert!(!shown.contains("<tr class=\"task dead\""), "{shown}");
    let every_task = shown
        .split("<table id=\"tasks\">")
        .nth(1)
        .expect("every task");
    assert_eq!(
        every_task.matches("<tr class=\"task queued\"").count(),
        2,
        "{shown}"
    );
}

#[test]
fn with_a_token_the_dashboard_serves_any_address_to_requests_that_carry_it() {
    let dir = TempDir::new("dash-token");
    let state = dir.path("state.sqlite");
    let (code, out, err) = run_flaky_job(&state);
    assert_eq!(code, 3, "{out}\n{err}");
    let token = "a-test-token-0123456789";
    let mut command = sosw(&["dashboard", "--bind", "0.0.0.0:0", "--state", text(&state)]);
    command.env("SOSW_DASHBOARD_TOKEN", token);
    let mut server = Server::start(command);
    server.address = server.address.replace("0.0.0.0", "127.0.0.1");
    let (status, _, body) = server.get("/");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("token"), "{body}");
    let bearer = format!("Authorization: Bearer {token}");
    let (status, _, page) = server.send("GET", "/", &[&bearer], "");
    assert_eq!(status, 200);
    assert!(page.contains(HASHTAGS), "{page}");
    let (status, head, _) = server.get(&format!("/?token={token}"));
    assert_eq!(status, 303);
    assert!(
        head.contains(&format!("set-cookie: sosw_dashboard_token={token};")),
        "{head}"
    );
    let cookie = format!("Cookie: sosw_dashboard_token={token}");
    assert_eq!(server.send("GET", "/", &[&cookie], "").0, 200);
}

/// `--aws`: the same pages over DynamoDB Local, built from the same store the other commands use.
#[tokio::test]
async fn the_dashboard_reads_dynamodb_with_aws() {
    let Some(endpoint) =
        sosw_integration_tests::emulator_endpoint(sosw_integration_tests::DYNAMODB_ENDPOINT_VAR)
    else {
        return;
    };
    let aws_job = DynamoJob::schedule(&endpoint, "dash-aws").await;
    let mut command = super::sosw_on_aws(&["dashboard", "--bind", "127.0.0.1:0"], &endpoint);
    command.args(["--config", text(&aws_job.dir.0)]);
    let server = Server::start(command);
    let (status, _, page) = server.get("/");
    assert_eq!(status, 200, "{page}");
    let row = page
        .lines()
        .find(|l| l.contains(&format!("data-labourer=\"{HASHTAGS}\"")))
        .expect("the labourer");
    assert!(row.contains("<td class=\"n queued\">36</td>"), "{row}");
    let job = &aws_job.report.job_id;
    assert!(page.contains(&format!("data-job=\"{job}\"")), "{page}");
    let (status, _, job_page) = server.get(&format!("/jobs/{job}"));
    assert_eq!(status, 200, "{job_page}");
    assert!(job_page.contains("no dead or failed tasks"), "{job_page}");
    drop(server);
    aws_job.delete_tables().await;
}
