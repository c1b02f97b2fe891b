//! `sosw dashboard`: a web page served by the `sosw` binary, over the state file or (`--aws`) the
//! DynamoDB tables, through the same query layer as `sosw jobs`, `sosw job` and `sosw queue`.
//!
//! Server-rendered HTML with inline CSS and inline SVG charts: no JavaScript, nothing loaded from the
//! network, pages that reload themselves (`<meta http-equiv="refresh">`).
//!
//! Routes (every state change is a POST carrying the CSRF token; no GET changes anything):
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | per labourer: queued, running, retry, dead, eco status, paused; jobs with progress, rate, ETA; charts |
//! | `GET /jobs/{job_id}` | the job, its dead and failed tasks (errors, output tails, bounded payloads); `?tasks=1` lists every task |
//! | `POST /jobs/{job_id}/redrive` | the job's dead tasks back to the queue |
//! | `POST /jobs/{job_id}/cancel` | cancels the job |
//! | `POST /labourers/{labourer_id}/redrive` | every dead task of the labourer back to the queue |
//! | `POST /labourers/{labourer_id}/pause` | pauses the labourer |
//! | `POST /labourers/{labourer_id}/resume` | resumes it |
//!
//! Security (docs/guide.md, "The dashboard"): loopback by default; any other address needs `--token`
//! (`SOSW_DASHBOARD_TOKEN`), and then every request carries it, as `Authorization: Bearer <token>` or the
//! cookie a first visit with `?token=<token>` sets. Without a token, requests must name a loopback host
//! (no DNS rebinding). Each POST form carries a per-process random CSRF token; a POST without the
//! matching one is refused with 403.

mod actions;
mod html;
mod sampler;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use clap::Args;
use serde::Deserialize;
use sosw::config::OrchestratorConfig;
use sosw::ecology::EcologyManager;
use sosw::notify::Notifier;
use sosw::query::{self, JobFilter};

use super::inspect::{QueueRow, ecology_manager, labourer_rows};
use super::ops::orchestrator_config;
use super::stores::{Backend, backend};
use super::{CliError, CliResult, Global};
use sampler::Samples;

/// The cookie a first visit with `?token=` sets.
const TOKEN_COOKIE: &str = "sosw_dashboard_token";

/// Fewest characters a `--token` has.
const TOKEN_MIN_CHARS: usize = 16;

/// Jobs the overview lists, newest first.
const JOBS_SHOWN: usize = 30;

/// Failed tasks a job page shows.
const FAILURES_SHOWN: usize = 100;

/// Tasks a job page lists with `?tasks=1`.
const TASKS_SHOWN: usize = 500;

/// `sosw dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Where to listen. Loopback by default; any other address needs --token. Port 0 picks a free
    /// port (the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub bind: SocketAddr,
    /// A secret every request must carry (required on a non-loopback --bind): at least 16 of
    /// A-Z a-z 0-9 . _ ~ -, e.g. from `openssl rand -hex 32`. Open http://ADDR/?token=TOKEN once (a
    /// cookie keeps it) or send `Authorization: Bearer TOKEN`.
    #[arg(
        long,
        env = "SOSW_DASHBOARD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Seconds between the samples of the throughput and queue-length charts (last hour kept).
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub sample_every: u64,
    /// Seconds between the pages' own reloads.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub refresh: u64,
}

/// What every request reads: the store, the labourers, the secrets and the samples.
pub(crate) struct Dashboard {
    store: Backend,
    /// Where a cancelled job's messages go (as `sosw cancel` sends them).
    notifier: (Arc<dyn Notifier>, Option<String>),
    config: OrchestratorConfig,
    ecology: EcologyManager,
    /// `--token`, when requests must carry one.
    token: Option<String>,
    /// The per-process CSRF token every POST form carries.
    csrf: String,
    samples: Mutex<Samples>,
    refresh_secs: u64,
}

impl Dashboard {
    /// The dashboard of `global`'s store (the state file, or DynamoDB with `--aws`), with the same
    /// config and store the other commands read.
    pub(crate) async fn open(
        global: &Global,
        token: Option<String>,
        sample_every: Duration,
        refresh_secs: u64,
    ) -> CliResult<Dashboard> {
        let config = orchestrator_config(global).await?;
        let store = backend(global, &config.task_config, false).await?;
        let ecology = ecology_manager(global, &config).await;
        let notifier = super::control::notifier(global).await?;
        Ok(Dashboard {
            store,
            notifier,
            config,
            ecology,
            token,
            csrf: random_secret(),
            samples: Mutex::new(Samples::new(sample_every)),
            refresh_secs: refresh_secs.max(1),
        })
    }

    fn labourer_ids(&self) -> Vec<String> {
        super::inspect::labourer_ids(&self.config)
    }

    fn samples(&self) -> Vec<sampler::Sample> {
        self.samples.lock().map(|s| s.points()).unwrap_or_default()
    }
}

/// 256 random bits as hex (two v4 UUIDs: the operating system's random source).
fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether `a` equals `b`, in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Checks `--bind` and `--token` together: a non-loopback address needs a token, and a token is long
/// enough and safe in a cookie and a URL.
fn check_security(bind: &SocketAddr, token: Option<&str>) -> CliResult<()> {
    match token {
        None if !bind.ip().is_loopback() => Err(CliError::new(format!(
            "--bind {bind} is not a loopback address: anyone who reaches it could steer sosw; pass \
             --token <secret> (or SOSW_DASHBOARD_TOKEN), e.g. --token $(openssl rand -hex 32), or bind \
             127.0.0.1"
        ))),
        Some(token) if token.chars().count() < TOKEN_MIN_CHARS => Err(CliError::new(format!(
            "--token is {} characters long; use at least {TOKEN_MIN_CHARS}, e.g. $(openssl rand -hex 32)",
            token.chars().count()
        ))),
        Some(token)
            if !token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-')) =>
        {
            Err(CliError::new(
                "--token may hold only A-Z a-z 0-9 . _ ~ - (it travels in a cookie and a URL); e.g. \
                 $(openssl rand -hex 32)",
            ))
        }
        _ => Ok(()),
    }
}

/// `sosw dashboard`: serves the pages until Ctrl-C.
pub async fn dashboard(global: &Global, args: DashboardArgs) -> CliResult {
    check_security(&args.bind, args.token.as_deref())?;
    let every = Duration::from_secs(args.sample_every.max(1));
    let dashboard = Arc::new(Dashboard::open(global, args.token, every, args.refresh).await?);
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|err| {
            CliError::new(format!(
                "cannot listen on {}: {err}; pick another --bind (port 0 picks a free one)",
                args.bind
            ))
        })?;
    let address = listener
        .local_addr()
        .map_err(|err| CliError::new(format!("cannot read the listening address: {err}")))?;
    let sampling = tokio::spawn(sampler::run(dashboard.clone(), every));
    say!(
        "dashboard of {} on http://{address}/ (Ctrl-C stops it)",
        dashboard.store.name
    );
    if dashboard.token.is_some() {
        say!(
            "every request carries the token: open http://{address}/?token=<token> once (a cookie keeps \
             it) or send `Authorization: Bearer <token>`"
        );
    }
    let served = axum::serve(listener, router(dashboard))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    sampling.abort();
    served.map_err(|err| CliError::new(format!("the dashboard stopped: {err}")))?;
    Ok(ExitCode::SUCCESS)
}

/// Every route, behind the token and host checks and the security headers.
pub(crate) fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/jobs/{job_id}", get(job_page))
        .route("/jobs/{job_id}/{action}", post(job_action))
        .route("/labourers/{labourer_id}/{action}", post(labourer_action))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(dashboard.clone(), guard))
        .with_state(dashboard)
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The `token` query parameter, if any.
fn query_token(request: &Request) -> Option<String> {
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// Whether the `Host` header names this machine's loopback (`localhost`, `127.x.x.x`, `[::1]`).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The token and host checks, then the security headers on every response.
async fn guard(State(dashboard): State<Arc<Dashboard>>, request: Request, next: Next) -> Response {
    let mut response = match &dashboard.token {
        None if !loopback_host(request.headers()) => (
            StatusCode::FORBIDDEN,
            "this dashboard answers only requests to localhost or a loopback address (start it with \
             --token to serve other names)\n",
        )
            .into_response(),
        None => next.run(request).await,
        Some(token) => {
            let bearer = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let from_cookie = cookie(request.headers(), TOKEN_COOKIE);
            if bearer.or(from_cookie).is_some_and(|t| same_secret(t, token)) {
                next.run(request).await
            } else if query_token(&request).is_some_and(|t| same_secret(&t, token)) {
                // The first visit: keep the token in a cookie and drop it from the address bar.
                let mut response = Redirect::to(request.uri().path()).into_response();
                let value = format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                }
                response
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    "this dashboard needs its token: open /?token=<token> once, or send \
                     `Authorization: Bearer <token>`\n",
                )
                    .into_response()
            }
        }
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A failure shown as a page.
struct PageError(StatusCode, String);

impl From<CliError> for PageError {
    fn from(err: CliError) -> Self {
        PageError(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
    }
}

impl From<sosw::Error> for PageError {
    fn from(err: sosw::Error) -> Self {
        PageError(StatusCode::INTERNAL_SERVER_ERROR, err.with_causes())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (self.0, Html(html::error_page(self.0, &self.1))).into_response()
    }
}

async fn not_found() -> PageError {
    PageError(
        StatusCode::NOT_FOUND,
        "no such page; the overview is at /".into(),
    )
}

/// `?msg=` and `?error=`: what the last action said (set by its redirect).
#[derive(Debug, Default, Deserialize)]
struct Notice {
    msg: Option<String>,
    error: Option<String>,
    /// `?tasks=1` on a job page: every task of the job.
    tasks: Option<String>,
}

impl Notice {
    fn flash(&self) -> html::Flash<'_> {
        html::Flash {
            message: self.msg.as_deref(),
            error: self.error.as_deref(),
        }
    }
}

/// One labourer's row with its pause state.
pub(crate) struct LabourerRow {
    row: QueueRow,
    /// Whether it is paused, or why that is not known.
    paused: Result<bool, String>,
}

fn now() -> i64 {
    Utc::now().timestamp()
}

/// `GET /`.
async fn overview(
    State(dashboard): State<Arc<Dashboard>>,
    Query(notice): Query<Notice>,
) -> Result<Html<String>, PageError> {
    let rows = labourer_rows(&dashboard.store, &dashboard.config, &dashboard.ecology).await?;
    let mut labourers = Vec::with_capacity(rows.len());
    for row in rows {
        let paused = Ok(row.paused);
        labourers.push(LabourerRow { row, paused });
    }
    let now = now();
    let jobs = query::list_jobs(
        dashboard.store.jobs.as_ref(),
        &JobFilter::default(),
        JOBS_SHOWN,
        now,
    )
    .await?;
    Ok(Html(html::overview(&html::Overview {
        store: &dashboard.store.name,
        labourers: &labourers,
        jobs: &jobs,
        samples: &dashboard.samples(),
        now,
        csrf: &dashboard.csrf,
        refresh_secs: dashboard.refresh_secs,
        flash: notice.flash(),
    })))
}

/// `GET /jobs/{job_id}`.
async fn job_page(
    State(dashboard): State<Arc<Dashboard>>,
    Path(job_id): Path<String>,
    Query(notice): Query<Notice>,
) -> Result<Html<String>, PageError> {
    let Some(job) = dashboard.store.jobs.get_job_counters(&job_id).await? else {
        return Err(PageError(
            StatusCode::NOT_FOUND,
            format!("no job `{job_id}` in {}", dashboard.store.name),
        ));
    };
    let now = now();
    let failures =
        query::job_failures(dashboard.store.tasks.as_ref(), &job, FAILURES_SHOWN).await?;
    let tasks = if notice.tasks.is_some() {
        Some(query::job_tasks(dashboard.store.tasks.as_ref(), &job, TASKS_SHOWN, now).await?)
    } else {
        None
    };
    Ok(Html(html::job(&html::JobPage {
        summary: &query::JobSummary::of(&job, now),
        failures: &failures,
        tasks: tasks.as_deref(),
        now,
        csrf: &dashboard.csrf,
        refresh_secs: dashboard.refresh_secs,
        flash: notice.flash(),
    })))
}

/// The fields of every POST form.
#[derive(Debug, Deserialize)]
struct ActionForm {
    csrf: Option<String>,
}

impl ActionForm {
    fn check(&self, dashboard: &Dashboard) -> Result<(), PageError> {
        match &self.csrf {
            Some(token) if same_secret(token, &dashboard.csrf) => Ok(()),
            _ => Err(PageError(
                StatusCode::FORBIDDEN,
                "this form is missing the dashboard's CSRF token (or has an old one, from before the \
                 dashboard restarted): reload the page and press the button again"
                    .into(),
            )),
        }
    }
}

/// Back to `path` with what the action said in `?msg=` or `?error=`.
fn after(path: &str, outcome: CliResult<String>) -> Response {
    let (key, text) = match outcome {
        Ok(message) => ("msg", message),
        Err(err) => ("error", err.to_string()),
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair(key, &text)
        .finish();
    Redirect::to(&format!("{path}?{query}")).into_response()
}

fn job_path(job_id: &str) -> String {
    format!("/jobs/{}", html::path_segment(job_id))
}

/// The labourer named in a route, if configured.
fn configured(dashboard: &Dashboard, labourer_id: &str) -> CliResult<()> {
    let ids = dashboard.labourer_ids();
    if ids.iter().any(|id| id == labourer_id) {
        Ok(())
    } else {
        Err(CliError::new(format!(
            "`{labourer_id}` is not a configured labourer; the labourers are: {}",
            ids.join(", ")
        )))
    }
}

/// What a POST route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Redrive,
    Cancel,
    Pause,
    Resume,
}

impl Action {
    /// The action a route's last segment names, on a job or a labourer.
    fn parse(name: &str, on_job: bool) -> Option<Action> {
        match (name, on_job) {
            ("redrive", _) => Some(Action::Redrive),
            ("cancel", true) => Some(Action::Cancel),
            ("pause", false) => Some(Action::Pause),
            ("resume", false) => Some(Action::Resume),
            _ => None,
        }
    }
}

fn no_such_action(action: &str) -> Response {
    PageError(
        StatusCode::NOT_FOUND,
        format!("no action `{action}` here; jobs have redrive and cancel, labourers redrive, pause and resume"),
    )
    .into_response()
}

/// `POST /jobs/{job_id}/{redrive|cancel}`.
async fn job_action(
    State(dashboard): State<Arc<Dashboard>>,
    Path((job_id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some(action) = Action::parse(&action, true) else {
        return no_such_action(&action);
    };
    if let Err(refused) = form.check(&dashboard) {
        return refused.into_response();
    }
    let outcome = if action == Action::Cancel {
        actions::cancel_job(&dashboard.store, &dashboard.notifier, &job_id).await
    } else {
        actions::redrive_job(&dashboard.store, &job_id).await
    };
    after(&job_path(&job_id), outcome)
}

/// `POST /labourers/{labourer_id}/{redrive|pause|resume}`.
async fn labourer_action(
    State(dashboard): State<Arc<Dashboard>>,
    Path((labourer_id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some(action) = Action::parse(&action, false) else {
        return no_such_action(&action);
    };
    if let Err(refused) = form.check(&dashboard) {
        return refused.into_response();
    }
    let store = &dashboard.store;
    let outcome = match configured(&dashboard, &labourer_id) {
        Err(err) => Err(err),
        Ok(()) => match action {
            Action::Pause => actions::pause_labourer(store, &labourer_id).await,
            Action::Resume => actions::resume_labourer(store, &labourer_id).await,
            _ => actions::redrive_labourer(store, &labourer_id).await,
        },
    };
    after("/", outcome)
}
