//! The dashboard's pages: HTML built on the server, every value from the store escaped ([`esc`]),
//! inline CSS, inline SVG charts, no script.

use std::fmt::Write as _;

use axum::http::StatusCode;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sosw::query::{JobSummary, TaskView};

use super::LabourerRow;
use super::sampler::{self, Sample, WINDOW_SECS};
use crate::cli::inspect::{age, at_least};

/// `text` safe in HTML text and in a quoted attribute: `&`, `<`, `>`, `"` and `'` escaped.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What a path segment percent-encodes: every byte but letters, digits and `-._~`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` as one URL path segment.
pub(crate) fn path_segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// What the last action said.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Flash<'a> {
    pub message: Option<&'a str>,
    pub error: Option<&'a str>,
}

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;background:#fff}th,td{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{width:160px;height:12px;background:#e4e4e4;border-radius:3px;overflow:hidden;display:inline-block;vertical-align:middle}
.bar span{display:block;height:100%;background:#3a7}.bar.dead span{background:#c84}
.flash{padding:.5em .8em;margin:.6em 0;border-radius:4px;background:#e6f4ea}.flash.error{background:#fde8e8}
pre{margin:.2em 0;padding:.4em;background:#f1f1f1;max-width:60em;overflow:auto;white-space:pre-wrap}
form{display:inline;margin:0}button{font:inherit;padding:.1em .6em;cursor:pointer}
.muted{color:#777}.dead{color:#a33}a{color:#25a}
svg{background:#fff;border:1px solid #ddd;margin-right:1em}
";

/// The page around `body`; with `refresh` (seconds, address), it reloads itself at that address
/// (the page's own, without the last action's message).
fn page(title: &str, refresh: Option<(u64, &str)>, flash: Flash<'_>, body: &str) -> String {
    let refresh = refresh.map_or_else(String::new, |(secs, url)| {
        format!(
            "<meta http-equiv=\"refresh\" content=\"{secs}; url={}\">",
            esc(url)
        )
    });
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(title)
    );
    if let Some(message) = flash.message {
        let _ = writeln!(out, "<p class=\"flash\" id=\"flash\">{}</p>", esc(message));
    }
    if let Some(error) = flash.error {
        let _ = writeln!(
            out,
            "<p class=\"flash error\" id=\"flash\">{}</p>",
            esc(error)
        );
    }
    out.push_str(body);
    out.push_str("\n</body></html>\n");
    out
}

/// A page that says what went wrong.
pub(crate) fn error_page(status: StatusCode, message: &str) -> String {
    page(
        &format!("sosw dashboard: {status}"),
        None,
        Flash::default(),
        &format!(
            "<h1>{}</h1><p class=\"dead\">{}</p><p><a href=\"/\">overview</a></p>",
            esc(&status.to_string()),
            esc(message)
        ),
    )
}

/// A POST button: a form with the CSRF token.
fn button(action: &str, label: &str, csrf: &str, class: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" class=\"{}\">{}</button></form>",
        esc(action),
        esc(csrf),
        esc(class),
        esc(label)
    )
}

/// A progress bar of `progress` (0..1); `dead` colours it for failures.
fn bar(progress: Option<f64>, dead: bool) -> String {
    let pct = progress.unwrap_or(0.0).clamp(0.0, 1.0) * 100.0;
    format!(
        "<span class=\"bar{}\"><span style=\"width:{pct:.1}%\"></span></span>",
        if dead { " dead" } else { "" }
    )
}

/// Tasks closed per minute since the job started, and the time left at that rate.
fn rate_and_eta(job: &JobSummary, now: i64) -> (String, String) {
    let Some(started) = job.started_at else {
        return ("-".into(), "-".into());
    };
    let end = job.finished_at.unwrap_or(now);
    let secs = (end - started).max(1) as f64;
    let per_min = job.closed as f64 * 60.0 / secs;
    let rate = format!("{per_min:.1}/min");
    let eta = match job.total {
        _ if job.status.is_finished() => "done".into(),
        Some(total) if per_min > 0.0 => {
            let left = total.saturating_sub(job.closed) as f64 * 60.0 / per_min;
            age(left.ceil() as i64)
        }
        _ => "-".into(),
    };
    (rate, eta)
}

fn progress_text(job: &JobSummary) -> String {
    match (job.total, job.progress) {
        (Some(total), Some(p)) => format!("{}/{total} ({:.0}%)", job.closed, p * 100.0),
        _ => format!("{}/? (chunking)", job.closed),
    }
}

/// What the overview shows.
pub(crate) struct Overview<'a> {
    pub store: &'a str,
    pub labourers: &'a [LabourerRow],
    pub jobs: &'a [JobSummary],
    pub samples: &'a [Sample],
    pub now: i64,
    pub csrf: &'a str,
    pub refresh_secs: u64,
    pub flash: Flash<'a>,
}

/// `GET /`.
pub(crate) fn overview(view: &Overview<'_>) -> String {
    let mut body = format!(
        "<h1>sosw dashboard</h1><p class=\"muted\">{} &middot; reloads every {} s</p>\n",
        esc(view.store),
        view.refresh_secs
    );
    body.push_str(
        "<h2>Labourers</h2><table id=\"labourers\"><tr><th>labourer</th><th class=\"n\">queued</th>\
         <th class=\"n\">running</th><th class=\"n\">expired</th><th class=\"n\">retry</th>\
         <th class=\"n\">dead</th><th class=\"n\">completed</th><th>eco</th><th>paused</th><th></th></tr>\n",
    );
    if view.labourers.is_empty() {
        body.push_str(
            "<tr><td colspan=\"10\">no labourers are configured (task_config.labourers)</td></tr>\n",
        );
    }
    for LabourerRow { row, paused } in view.labourers {
        let c = &row.counts;
        let id = &row.labourer_id;
        let eco = match row.eco_status {
            Some(status) => format!("{status} {}", row.eco),
            None => row.eco.clone(),
        };
        let paused = match paused {
            Ok(true) => "paused".to_owned(),
            Ok(false) => "no".to_owned(),
            Err(why) => format!("<span class=\"muted\">{}</span>", esc(why)),
        };
        let path = format!("/labourers/{}", path_segment(id));
        let _ = writeln!(
            body,
            "<tr data-labourer=\"{}\"><td>{}</td><td class=\"n queued\">{}</td><td class=\"n running\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n retry\">{}</td><td class=\"n dead\">{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td>{paused}</td><td>{} {} {}</td></tr>",
            esc(id),
            esc(id),
            at_least(c.queued, c.capped.queued),
            c.running,
            at_least(c.expired, c.capped.expired),
            c.retry,
            at_least(c.dead, c.capped.dead),
            at_least(c.completed, c.capped.completed),
            esc(&eco),
            button(&format!("{path}/pause"), "pause", view.csrf, "pause"),
            button(&format!("{path}/resume"), "resume", view.csrf, "resume"),
            button(
                &format!("{path}/redrive"),
                &format!("redrive {} dead", at_least(c.dead, c.capped.dead)),
                view.csrf,
                "redrive"
            ),
        );
    }
    body.push_str("</table>\n<h2>Last hour</h2>\n");
    let points = view.samples;
    let throughput = sampler::throughput(points);
    body.push_str(&chart(
        "throughput",
        "tasks closed per minute",
        &throughput,
        view.now,
    ));
    let waiting: Vec<(i64, f64)> = points.iter().map(|p| (p.at, p.waiting as f64)).collect();
    body.push_str(&chart(
        "queue",
        "tasks queued or waiting for retry",
        &waiting,
        view.now,
    ));
    body.push_str(
        "\n<h2>Jobs</h2><table id=\"jobs\"><tr><th>job</th><th>labourer</th><th>status</th>\
         <th>progress</th><th class=\"n\">dead</th><th class=\"n\">rate</th><th class=\"n\">ETA</th>\
         <th class=\"n\">age</th></tr>\n",
    );
    if view.jobs.is_empty() {
        body.push_str("<tr><td colspan=\"8\">no jobs yet</td></tr>\n");
    }
    for job in view.jobs {
        let (rate, eta) = rate_and_eta(job, view.now);
        let _ = writeln!(
            body,
            "<tr class=\"job\" data-job=\"{}\" data-closed=\"{}\" data-total=\"{}\"><td><a href=\"/jobs/{}\">{}</a></td>\
             <td>{}</td><td class=\"status\">{}</td><td>{} {}</td><td class=\"n dead\">{}</td>\
             <td class=\"n\">{rate}</td><td class=\"n\">{eta}</td><td class=\"n\">{}</td></tr>",
            esc(&job.job_id),
            job.closed,
            job.total.map_or_else(String::new, |t| t.to_string()),
            esc(&path_segment(&job.job_id)),
            esc(&job.job_id),
            esc(&job.labourers.join(", ")),
            esc(job.status_name()),
            bar(job.progress, job.dead > 0),
            esc(&progress_text(job)),
            job.dead,
            esc(&age(job.age_secs)),
        );
    }
    body.push_str("</table>\n");
    page(
        "sosw dashboard",
        Some((view.refresh_secs, "/")),
        view.flash,
        &body,
    )
}

/// Chart size in SVG units.
const CHART_W: f64 = 480.0;
const CHART_H: f64 = 120.0;
const CHART_PAD: f64 = 24.0;

/// An inline SVG line chart of `points` (time, value) up to `now`, over the last hour at most.
fn chart(id: &str, title: &str, points: &[(i64, f64)], now: i64) -> String {
    let width = CHART_W + 2.0 * CHART_PAD;
    let height = CHART_H + 2.0 * CHART_PAD;
    let mut out = format!(
        "<svg id=\"chart-{}\" role=\"img\" aria-label=\"{}\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title>{}</title><text x=\"{CHART_PAD}\" y=\"16\" font-size=\"12\">{}</text>\
         <line x1=\"{CHART_PAD}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>",
        esc(id),
        esc(title),
        esc(title),
        esc(title),
        CHART_PAD + CHART_H,
        CHART_PAD + CHART_W,
        CHART_PAD + CHART_H,
    );
    if points.len() < 2 {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#777\" text-anchor=\"middle\">collecting samples…</text></svg>",
            width / 2.0,
            height / 2.0
        );
        return out;
    }
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = if max > 0.0 { max } else { 1.0 };
    // The time axis spans the samples there are, up to the last hour (at least a minute).
    let first = points.first().map_or(now, |p| p.0);
    let span = (now - first).clamp(60, WINDOW_SECS);
    let start = now - span;
    let _ = write!(
        out,
        "<text x=\"{CHART_PAD}\" y=\"{}\" font-size=\"10\" fill=\"#777\">-{}</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#777\" text-anchor=\"end\">now</text>",
        height - 6.0,
        esc(&age(span)),
        CHART_PAD + CHART_W,
        height - 6.0
    );
    let coords: Vec<String> = points
        .iter()
        .map(|&(at, value)| {
            let x = CHART_PAD + (at - start).clamp(0, span) as f64 / span as f64 * CHART_W;
            let y = CHART_PAD + CHART_H - value / top * CHART_H;
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let last = points.last().map_or(0.0, |p| p.1);
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"16\" font-size=\"12\" text-anchor=\"end\">now {last:.1} &middot; max {max:.1}</text>\
         <polyline fill=\"none\" stroke=\"#3a7\" stroke-width=\"2\" points=\"{}\"/></svg>",
        CHART_PAD + CHART_W,
        coords.join(" ")
    );
    out
}

/// What a job page shows.
pub(crate) struct JobPage<'a> {
    pub summary: &'a JobSummary,
    pub failures: &'a [TaskView],
    pub tasks: Option<&'a [TaskView]>,
    pub now: i64,
    pub csrf: &'a str,
    pub refresh_secs: u64,
    pub flash: Flash<'a>,
}

/// One task's rows: id, status, attempts, error, output tail and payload preview.
fn task_rows(out: &mut String, tasks: &[TaskView]) {
    out.push_str(
        "<tr><th>task</th><th>status</th><th class=\"n\">attempts</th><th>last error, output tail, payload</th></tr>\n",
    );
    for task in tasks {
        let _ = write!(
            out,
            "<tr class=\"task {}\" data-task=\"{}\"><td>{}</td><td class=\"status\">{}</td><td class=\"n\">{}</td><td>",
            esc(task.status.name()),
            esc(&task.task_id),
            esc(&task.task_id),
            esc(task.status.name()),
            task.attempts
        );
        match &task.last_error {
            Some(error) => {
                let _ = write!(out, "<div class=\"error dead\">{}</div>", esc(error));
            }
            None => out.push_str("<div class=\"muted\">no error recorded</div>"),
        }
        if let Some(tail) = &task.output_tail {
            let _ = write!(out, "<pre class=\"output\">{}</pre>", esc(tail));
        }
        let _ = writeln!(
            out,
            "<pre class=\"payload muted\">{}</pre></td></tr>",
            esc(&task.payload_preview)
        );
    }
}

/// `GET /jobs/{job_id}`.
pub(crate) fn job(view: &JobPage<'_>) -> String {
    let job = view.summary;
    let path = format!("/jobs/{}", path_segment(&job.job_id));
    let (rate, eta) = rate_and_eta(job, view.now);
    let mut body = format!(
        "<p><a href=\"/\">&larr; overview</a></p><h1>job {}</h1>\n<table id=\"job\" data-closed=\"{}\" data-total=\"{}\">\
         <tr><th>labourer</th><td>{}</td></tr><tr><th>status</th><td class=\"status\">{}</td></tr>\
         <tr><th>progress</th><td>{} {}</td></tr><tr><th>completed</th><td>{}</td></tr>\
         <tr><th>dead</th><td class=\"dead\">{}</td></tr><tr><th>failure reports</th><td>{}</td></tr>\
         <tr><th>rate</th><td>{rate}</td></tr><tr><th>ETA</th><td>{eta}</td></tr>\
         <tr><th>age</th><td>{}</td></tr><tr><th>requesters</th><td>{}</td></tr></table>\n<p>{} {}</p>\n",
        esc(&job.job_id),
        job.closed,
        job.total.map_or_else(String::new, |t| t.to_string()),
        esc(&job.labourers.join(", ")),
        esc(job.status_name()),
        bar(job.progress, job.dead > 0),
        esc(&progress_text(job)),
        job.completed,
        job.dead,
        job.failed,
        esc(&age(job.age_secs)),
        esc(&job.requesters.join(", ")),
        button(
            &format!("{path}/redrive"),
            &format!("redrive {} dead", job.dead),
            view.csrf,
            "redrive"
        ),
        button(&format!("{path}/cancel"), "cancel job", view.csrf, "cancel"),
    );
    let _ = writeln!(
        body,
        "<h2>Dead and failed tasks ({} shown)</h2>",
        view.failures.len()
    );
    if view.failures.is_empty() {
        body.push_str("<p class=\"muted\" id=\"no-failures\">no dead or failed tasks</p>\n");
    } else {
        body.push_str("<table id=\"failures\">\n");
        task_rows(&mut body, view.failures);
        body.push_str("</table>\n");
    }
    match view.tasks {
        Some(tasks) => {
            let _ = writeln!(
                body,
                "<h2>Every task ({} shown)</h2><table id=\"tasks\">",
                tasks.len()
            );
            task_rows(&mut body, tasks);
            body.push_str("</table>\n");
        }
        None => {
            let _ = writeln!(
                body,
                "<p><a id=\"all-tasks\" href=\"{}?tasks=1\">every task of the job</a></p>",
                esc(&path)
            );
        }
    }
    let own = if view.tasks.is_some() {
        format!("{path}?tasks=1")
    } else {
        path
    };
    page(
        &format!("sosw job {}", job.job_id),
        Some((view.refresh_secs, &own)),
        view.flash,
        &body,
    )
}
