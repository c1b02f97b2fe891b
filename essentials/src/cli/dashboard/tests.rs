//! The dashboard's routes through `tower::ServiceExt::oneshot`, over a state file with a job whose
//! dead tasks carry `<script>` in their error, output and payload.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::json;
use sosw::embedded::SqliteTaskStore;
use sosw::store::{
    ClaimOutcome, ClosedStatus, CreateJobOutcome, EnqueueMode, JobCounts, JobRecord, JobStatus,
    JobStore, MoveOutcome, TaskArchive, TaskClaims, TaskLookup, TaskQueue,
};
use sosw::task::{Task, TaskId};
use tower::ServiceExt;

use super::sampler::{Sample, Samples, throughput};
use super::*;

const FLAKY: &str = "sosw_tutorial_flaky_hashtags";
const JOB: &str = "job<b>&x";
const TOKEN: &str = "0123456789abcdef-token";
const SCRIPT: &str = "<script>alert('x')</script>";

/// A state file of its own, removed at the end.
struct StateFile(PathBuf);

impl Drop for StateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A state file with job `JOB` of the flaky labourer: 3 tasks, 2 dead (with `<script>` in their
/// error, output and a long payload), 1 queued.
async fn state_file(name: &str) -> StateFile {
    let path = std::env::temp_dir().join(format!(
        "sosw-dashboard-{name}-{}.sqlite",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let store = SqliteTaskStore::open(&path).expect("state file");
    let now = Utc::now().timestamp();
    let tasks: Vec<Task> = (0..3)
        .map(|i| {
            let payload = json!({"words": [SCRIPT], "pad": "p".repeat(500), "i": i});
            let id = TaskId::for_chunk(JOB, i as u64);
            let mut task = Task::new(id.as_str(), FLAKY, payload, now - 100 + i, 0.0);
            task.job_id = Some(JOB.into());
            task.extra
                .insert("result_error".into(), json!(format!("failed: {SCRIPT}")));
            task.extra.insert(
                "result_output".into(),
                json!(format!("first line\n{SCRIPT} said the worker")),
            );
            task
        })
        .collect();
    store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    for i in 0..2 {
        let id = TaskId::for_chunk(JOB, i);
        let claimed = store.claim(&id, now + 60).await.expect("claim");
        assert!(matches!(claimed, ClaimOutcome::Claimed(_)), "setup claim");
        let row = store.get_task(&id).await.expect("get").expect("live");
        let moved = store
            .archive(&row, ClosedStatus::Dead, now - 10)
            .await
            .expect("archive");
        assert_eq!(moved, MoveOutcome::Moved, "setup archive");
    }
    let record = JobRecord {
        job_id: JOB.into(),
        labourer_id: FLAKY.into(),
        status: JobStatus::Running,
        total: Some(3),
        enqueued: 3,
        counts: JobCounts {
            completed: 0,
            failed: 2,
            dead: 2,
            cancelled: 0,
        },
        created_at: now - 100,
        started_at: Some(now - 100),
        finished_at: None,
        requesters: vec![],
        job: json!({}),
    };
    assert_eq!(
        store.create_job(&record).await.expect("job"),
        CreateJobOutcome::Created
    );
    StateFile(path)
}

fn global(state: &StateFile) -> Global {
    Global {
        state: state.0.clone(),
        config: None,
        aws: false,
        scheduler_function: "sosw_scheduler".into(),
        plain: true,
        log: "error".into(),
    }
}

async fn dashboard(state: &StateFile, token: Option<&str>) -> Arc<Dashboard> {
    Arc::new(
        Dashboard::open(
            &global(state),
            token.map(str::to_owned),
            Duration::from_secs(5),
            5,
        )
        .await
        .expect("dashboard"),
    )
}

/// A request to `uri` as a browser on this machine sends it.
fn request(method: &str, uri: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1:8080")
}

fn get(uri: &str) -> Request<Body> {
    request("GET", uri).body(Body::empty()).expect("request")
}

fn post(uri: &str, form: &str) -> Request<Body> {
    request("POST", uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .expect("request")
}

async fn send(
    dashboard: &Arc<Dashboard>,
    request: Request<Body>,
) -> (StatusCode, HeaderMap, String) {
    let response = router(dashboard.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .expect("body");
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn location(headers: &HeaderMap) -> String {
    headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a redirect")
        .to_owned()
}

/// The dead and queued counts of the flaky labourer in the state file.
async fn dead_and_queued(state: &StateFile) -> (usize, u64) {
    let store = SqliteTaskStore::open(&state.0).expect("state");
    let now = Utc::now().timestamp();
    let dead = store
        .closed_sample(FLAKY, ClosedStatus::Dead, 100)
        .await
        .expect("dead")
        .len();
    (dead, store.queue_length(FLAKY, now).await.expect("queued"))
}

fn job_url() -> String {
    format!("/jobs/{}", html::path_segment(JOB))
}

#[tokio::test]
async fn the_overview_shows_labourers_jobs_buttons_and_charts() {
    let state = state_file("overview").await;
    let dash = dashboard(&state, None).await;
    dash.samples.lock().expect("lock").push(Sample {
        at: Utc::now().timestamp() - 10,
        waiting: 3,
        closed: 0,
    });
    dash.samples.lock().expect("lock").push(Sample {
        at: Utc::now().timestamp(),
        waiting: 1,
        closed: 2,
    });
    let (status, headers, body) = send(&dash, get("/")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = body
        .lines()
        .find(|l| l.contains(&format!("data-labourer=\"{FLAKY}\"")))
        .expect("the flaky labourer's row");
    assert!(row.contains("<td class=\"n queued\">1</td>"), "{row}");
    assert!(row.contains("<td class=\"n dead\">2</td>"), "{row}");
    assert!(row.contains("redrive 2 dead"), "{row}");
    assert!(row.contains("<td>no</td>"), "not paused: {row}");
    assert!(
        body.contains("data-job=\"job&lt;b&gt;&amp;x\"")
            && body.contains("href=\"/jobs/job%3Cb%3E%26x\""),
        "the job's id is escaped and its link encoded: {body}"
    );
    assert!(body.contains("2/3 (67%)"), "{body}");
    assert!(body.contains("<svg id=\"chart-throughput\""), "{body}");
    assert!(
        body.contains("<polyline"),
        "two samples draw a line: {body}"
    );
    assert!(body.contains("<meta http-equiv=\"refresh\" content=\"5; url=/\">"));
    assert_eq!(
        body.matches(&format!("name=\"csrf\" value=\"{}\"", dash.csrf))
            .count(),
        3 * body.matches("<tr data-labourer=").count(),
        "every form carries the CSRF token (three buttons per labourer)"
    );
    assert!(!body.contains("<script"), "no script on the page");
    let csp = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .expect("CSP");
    assert!(csp.contains("default-src 'none'"), "{csp}");
}

#[tokio::test]
async fn a_job_page_shows_its_dead_tasks_escaped_and_bounded() {
    let state = state_file("job").await;
    let dash = dashboard(&state, None).await;
    let (status, _, body) = send(&dash, get(&job_url())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.contains("<script"), "{body}");
    assert!(
        body.contains("failed: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "{body}"
    );
    assert!(body.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; said the worker"));
    assert_eq!(body.matches("<tr class=\"task dead\"").count(), 2, "{body}");
    assert!(body.contains("ppp…"), "payloads are cut: {body}");
    assert!(!body.contains(&"p".repeat(300)), "no whole payload");
    assert!(body.contains("redrive 2 dead"), "{body}");

    let (status, _, body) = send(&dash, get(&format!("{}?tasks=1", job_url()))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<table id=\"tasks\">"), "{body}");
    assert_eq!(
        body.matches("<tr class=\"task queued\"").count(),
        1,
        "{body}"
    );

    let (status, _, body) = send(&dash, get("/jobs/%3Cscript%3E")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no job `&lt;script&gt;`"), "{body}");
    let (status, _, _) = send(&dash, get("/nowhere")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_get_changes_state() {
    let state = state_file("get").await;
    let dash = dashboard(&state, None).await;
    let before = dead_and_queued(&state).await;
    assert_eq!(before, (2, 1));
    let csrf = dash.csrf.clone();
    for uri in [
        format!("{}/redrive?csrf={csrf}", job_url()),
        format!("{}/cancel?csrf={csrf}", job_url()),
        format!("/labourers/{FLAKY}/redrive?csrf={csrf}"),
        format!("/labourers/{FLAKY}/pause?csrf={csrf}"),
    ] {
        let (status, _, _) = send(&dash, get(&uri)).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{uri}");
    }
    for uri in ["/".to_owned(), job_url(), format!("{}?tasks=1", job_url())] {
        let (status, _, _) = send(&dash, get(&uri)).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
    }
    assert_eq!(dead_and_queued(&state).await, before, "nothing moved");
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_with_it_redrives() {
    let state = state_file("csrf").await;
    let dash = dashboard(&state, None).await;
    let url = format!("{}/redrive", job_url());
    for form in ["", "csrf=", "csrf=0123", &format!("csrf={}x", dash.csrf)] {
        let (status, _, body) = send(&dash, post(&url, form)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form}: {body}");
        assert!(body.contains("CSRF"), "{body}");
    }
    let (status, _, body) = send(
        &dash,
        post(&format!("/labourers/{FLAKY}/redrive"), "csrf=wrong"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(dead_and_queued(&state).await, (2, 1), "nothing moved");

    let (status, headers, _) = send(&dash, post(&url, &format!("csrf={}", dash.csrf))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let back = location(&headers);
    assert!(
        back.starts_with(&format!("{}?msg=2+dead", job_url())),
        "{back}"
    );
    assert_eq!(
        dead_and_queued(&state).await,
        (0, 3),
        "both back in the queue"
    );
    let (_, _, page) = send(&dash, get(&back)).await;
    assert!(
        page.contains(&format!("content=\"5; url={}\"", job_url())),
        "the page reloads without the message: {page}"
    );
    assert!(
        page.contains("<p class=\"flash\" id=\"flash\">2 dead task(s) of job job&lt;b&gt;&amp;x back in the queue"),
        "{page}"
    );
    let store = SqliteTaskStore::open(&state.0).expect("state");
    let job = store.get_job(JOB).await.expect("read").expect("job");
    assert_eq!((job.status, job.counts.dead), (JobStatus::Running, 0));
}

#[tokio::test]
async fn labourer_and_job_actions_pause_resume_redrive_and_cancel() {
    let state = state_file("labourer").await;
    let dash = dashboard(&state, None).await;
    let form = format!("csrf={}", dash.csrf);
    let flaky_row = |body: &str| {
        body.lines()
            .find(|l| l.contains(&format!("data-labourer=\"{FLAKY}\"")))
            .map(str::to_owned)
            .expect("the flaky labourer's row")
    };
    for (action, said, shown) in [
        ("pause", "paused labourer", "<td>paused</td>"),
        ("pause", "was already paused", "<td>paused</td>"),
        ("resume", "resumed labourer", "<td>no</td>"),
        ("resume", "was not paused", "<td>no</td>"),
    ] {
        let (status, headers, _) =
            send(&dash, post(&format!("/labourers/{FLAKY}/{action}"), &form)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let back = location(&headers);
        assert!(back.starts_with("/?msg="), "{action}: {back}");
        let (_, _, page) = send(&dash, get(&back)).await;
        assert!(page.contains(said), "{action}: {page}");
        assert!(flaky_row(&page).contains(shown), "{action}: {page}");
    }
    let (status, _, _) = send(&dash, post(&format!("/labourers/{FLAKY}/explode"), &form)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(&dash, post(&format!("{}/pause", job_url()), &form)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "jobs are not paused");
    let (_, headers, _) = send(&dash, post("/labourers/nobody/redrive", &form)).await;
    let back = location(&headers);
    let (_, _, page) = send(&dash, get(&back)).await;
    assert!(
        page.contains("`nobody` is not a configured labourer"),
        "{page}"
    );
    assert_eq!(dead_and_queued(&state).await, (2, 1), "nothing moved yet");

    let (_, headers, _) = send(&dash, post(&format!("/labourers/{FLAKY}/redrive"), &form)).await;
    assert!(location(&headers).starts_with("/?msg=2+dead"));
    assert_eq!(dead_and_queued(&state).await, (0, 3));

    let (_, headers, _) = send(&dash, post(&format!("{}/cancel", job_url()), &form)).await;
    let back = location(&headers);
    let (_, _, page) = send(&dash, get(&back)).await;
    assert!(
        page.contains("3 queued and 0 waiting task(s) closed as cancelled"),
        "{page}"
    );
    assert_eq!(dead_and_queued(&state).await, (0, 0));
    let store = SqliteTaskStore::open(&state.0).expect("state");
    let job = store.get_job(JOB).await.expect("read").expect("job");
    assert_eq!(
        (job.status, job.counts.cancelled),
        (JobStatus::Cancelled, 3)
    );
}

#[tokio::test]
async fn with_a_token_every_request_carries_it() {
    let state = state_file("token").await;
    let dash = dashboard(&state, Some(TOKEN)).await;
    let (status, _, body) = send(&dash, get("/")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _, _) = send(&dash, get("/?token=wrong-token-of-some-length")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(&dash, post(&format!("{}/redrive", job_url()), "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A first visit with ?token= sets the cookie and drops the token from the address.
    let (status, headers, _) = send(&dash, get(&format!("{}?token={TOKEN}", job_url()))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), job_url());
    let cookie = headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a cookie");
    assert!(
        cookie.starts_with(&format!("{TOKEN_COOKIE}={TOKEN};"))
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let with_cookie = request("GET", "/")
        .header(header::COOKIE, format!("other=1; {TOKEN_COOKIE}={TOKEN}"))
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&dash, with_cookie).await.0, StatusCode::OK);
    let bearer = request("GET", "/")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::HOST, "dashboard.example:8080")
        .body(Body::empty())
        .expect("request");
    assert_eq!(
        send(&dash, bearer).await.0,
        StatusCode::OK,
        "with a token, any host name"
    );
}

#[tokio::test]
async fn without_a_token_only_loopback_host_names_are_served() {
    let state = state_file("host").await;
    let dash = dashboard(&state, None).await;
    for host in ["localhost:8080", "127.0.0.1", "[::1]:9000"] {
        let request = Request::builder()
            .uri("/")
            .header(header::HOST, host)
            .body(Body::empty())
            .expect("request");
        assert_eq!(send(&dash, request).await.0, StatusCode::OK, "{host}");
    }
    for host in ["attacker.example:8080", "localhost.attacker.example"] {
        let request = Request::builder()
            .uri("/")
            .header(header::HOST, host)
            .body(Body::empty())
            .expect("request");
        assert_eq!(
            send(&dash, request).await.0,
            StatusCode::FORBIDDEN,
            "DNS rebinding: {host}"
        );
    }
}

#[test]
fn a_non_loopback_bind_needs_a_good_token() {
    let any: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
    let local: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
    let six: SocketAddr = "[::1]:8080".parse().expect("addr");
    assert!(check_security(&local, None).is_ok());
    assert!(check_security(&six, None).is_ok());
    let err = check_security(&any, None)
        .expect_err("no token")
        .to_string();
    assert!(
        err.contains("--token") && err.contains("0.0.0.0:8080"),
        "{err}"
    );
    assert!(check_security(&any, Some(TOKEN)).is_ok());
    let err = check_security(&any, Some("short"))
        .expect_err("short")
        .to_string();
    assert!(err.contains("at least 16"), "{err}");
    let err = check_security(&local, Some("has;semicolons;and spaces"))
        .expect_err("bad characters")
        .to_string();
    assert!(err.contains("A-Z a-z 0-9"), "{err}");
    assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "ab"));
    assert_ne!(random_secret(), random_secret());
    assert_eq!(random_secret().len(), 64);
}

#[test]
fn escaping_covers_text_and_attributes() {
    assert_eq!(
        html::esc("<a href=\"x\">'&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(html::path_segment("a b/c?d"), "a%20b%2Fc%3Fd");
}

#[test]
fn the_samples_keep_the_last_hour_in_a_bounded_ring() {
    let mut samples = Samples::new(Duration::from_secs(60));
    for i in 0..200 {
        samples.push(Sample {
            at: i * 60,
            waiting: i as u64,
            closed: (i * 10) as u64,
        });
    }
    let points = samples.points();
    assert_eq!(points.len(), 61, "an hour at one a minute");
    assert_eq!(points[0].at, 139 * 60);
    let rates = throughput(&points);
    assert_eq!(rates.len(), 60);
    assert!(
        rates.iter().all(|&(_, r)| (r - 10.0).abs() < 1e-9),
        "{rates:?}"
    );
    // A redrive takes closed tasks back: no negative throughput.
    let dip = [
        Sample {
            at: 0,
            waiting: 0,
            closed: 5,
        },
        Sample {
            at: 10,
            waiting: 2,
            closed: 3,
        },
    ];
    assert_eq!(throughput(&dip), vec![(10, 0.0)]);
    // Samples far apart: older than an hour are dropped even below capacity.
    let mut sparse = Samples::new(Duration::from_secs(5));
    sparse.push(Sample {
        at: 0,
        waiting: 0,
        closed: 0,
    });
    sparse.push(Sample {
        at: 4_000,
        waiting: 0,
        closed: 0,
    });
    assert_eq!(sparse.points().len(), 1);
}

#[tokio::test]
async fn a_sample_counts_waiting_and_closed_tasks() {
    let state = state_file("sample").await;
    let dash = dashboard(&state, None).await;
    let point = sampler::sample(&dash).await.expect("sample");
    assert_eq!((point.waiting, point.closed), (1, 2));
}
