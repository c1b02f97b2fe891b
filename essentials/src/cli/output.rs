//! Progress of a local run: a bar per labourer on a terminal, plain lines otherwise.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sosw::local::{LabourerProgress, RunObserver};

/// Set once writing to stdout failed (its reader went away): later output is dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether stdout still takes lines (false once its reader went away).
pub fn stdout_open() -> bool {
    !STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Writes one line to stdout (`say!`). Returns false, and drops this and every later line, once
/// stdout is closed: a reader such as `head` that stops early ends the output, not the program with a
/// panic.
pub fn line(args: fmt::Arguments<'_>) -> bool {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return false;
    }
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        // Stdout is line-buffered: the newline sends the line, and any error shows here.
        .and_then(|()| out.write_all(b"\n"));
    if written.is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        return false;
    }
    true
}

/// Writes one line to stderr (`tell!`); a closed stderr drops it.
pub fn diagnostic(args: fmt::Arguments<'_>) {
    // Stderr is unbuffered: formatted first, the line goes out in one write, not one per piece, so
    // another process writing to the same terminal cannot cut into it.
    let line = format!("{args}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Plain lines come at most this often per labourer (and only when something changed).
const LINE_INTERVAL: Duration = Duration::from_millis(500);

/// Shows progress as bars or lines.
pub enum Progress {
    /// Bars on a terminal (stderr).
    Bars(Bars),
    /// Lines on stdout.
    Lines(Lines),
}

impl Progress {
    /// Bars when stderr is a terminal and `plain` is not set, else lines.
    pub fn new(plain: bool) -> Self {
        if !plain && std::io::stderr().is_terminal() {
            Progress::Bars(Bars::default())
        } else {
            Progress::Lines(Lines::default())
        }
    }

    /// Ends the display (bars are left as they are).
    pub fn finish(&self) {
        if let Progress::Bars(bars) = self {
            bars.finish();
        }
    }
}

impl RunObserver for Progress {
    fn update(&self, progress: &[LabourerProgress]) {
        match self {
            Progress::Bars(bars) => bars.update(progress),
            Progress::Lines(lines) => lines.update(progress),
        }
    }
}

fn detail(p: &LabourerProgress) -> String {
    format!(
        "completed {}, dead {}, running {}, queued {}, retry {}",
        p.completed, p.dead, p.running, p.queued, p.retry
    )
}

/// A progress bar per labourer.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Default for Bars {
    fn default() -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Bars {
    fn update(&self, progress: &[LabourerProgress]) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        for p in progress {
            let bar = bars.entry(p.labourer_id.clone()).or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(p.total));
                let style = ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(p.labourer_id.clone());
                bar
            });
            bar.set_length(p.total);
            bar.set_position(p.closed());
            bar.set_message(detail(p));
        }
    }

    fn finish(&self) {
        let bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        for bar in bars.values() {
            bar.finish();
        }
    }
}

/// A line per labourer whenever its counts change, at most every [`LINE_INTERVAL`].
#[derive(Default)]
pub struct Lines {
    last: Mutex<BTreeMap<String, (LabourerProgress, Instant)>>,
}

impl Lines {
    fn update(&self, progress: &[LabourerProgress]) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        for p in progress {
            let due = match last.get(&p.labourer_id) {
                None => true,
                Some((seen, at)) => {
                    seen != p && (at.elapsed() >= LINE_INTERVAL || p.closed() == p.total)
                }
            };
            if due {
                say!(
                    "{}: {}/{} closed ({})",
                    p.labourer_id,
                    p.closed(),
                    p.total,
                    detail(p)
                );
                last.insert(p.labourer_id.clone(), (p.clone(), Instant::now()));
            }
        }
    }
}
