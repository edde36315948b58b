//! [`Progress`] of a long-running command, on stderr so that stdout carries only results: on
//! a terminal an indicatif bar with count, rate and ETA; otherwise (a pipe, a CI log) one
//! plain line every [`PLAIN_INTERVAL`].
//!
//! Workers only add to an atomic counter ([`Progress::add`]); one ticker thread reads it and
//! draws, so the hot loops never touch the terminal. A command with more to say than one count
//! (`bank test`: conflicts, checks) passes a detail function the ticker calls at each redraw.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::units::{fmt_bytes, fmt_count, fmt_duration, fmt_rate};

/// The unit that is shown as a byte size (kB, MB, ...).
pub const BYTES: &str = "bytes";
/// Time between two plain progress lines.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(2);
/// Time between two redraws of the terminal bar.
const BAR_INTERVAL: Duration = Duration::from_millis(100);

/// What "done" means for a command.
#[derive(Clone, Copy, Debug)]
pub enum Goal {
    /// A known number of items (entries, bytes).
    Items(u64),
    /// A fixed duration (reads for `-d`).
    Time(Duration),
    /// No known end (a flatten): elapsed time only.
    Open,
}

/// A running progress display; stopped by [`Progress::finish`] or on drop.
#[derive(Debug)]
pub struct Progress {
    done: Arc<AtomicU64>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    ticker: Option<JoinHandle<()>>,
}

/// Text appended to each progress message, computed at each redraw (reads atomics only).
pub type Detail = Box<dyn Fn() -> String + Send>;

/// What the ticker thread knows.
struct Ticker {
    label: String,
    unit: &'static str,
    goal: Goal,
    start: Instant,
    done: Arc<AtomicU64>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    detail: Option<Detail>,
}

impl Progress {
    /// Starts showing progress of `label` toward `goal`, counting `unit`s (an empty unit
    /// shows no counts, for work that has none).
    pub fn start(label: &str, goal: Goal, unit: &'static str) -> Progress {
        Progress::start_inner(label, goal, unit, None)
    }

    /// As [`Progress::start`], with `detail()` appended to every message (`, ` between).
    pub fn start_with_detail(
        label: &str,
        goal: Goal,
        unit: &'static str,
        detail: impl Fn() -> String + Send + 'static,
    ) -> Progress {
        Progress::start_inner(label, goal, unit, Some(Box::new(detail)))
    }

    fn start_inner(
        label: &str,
        goal: Goal,
        unit: &'static str,
        detail: Option<Detail>,
    ) -> Progress {
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let ticker = Ticker {
            label: label.to_string(),
            unit,
            goal,
            start: Instant::now(),
            done: done.clone(),
            stop: stop.clone(),
            detail,
        };
        let terminal = std::io::stderr().is_terminal();
        let handle = std::thread::Builder::new()
            .name("settdb-progress".into())
            .spawn(move || {
                if terminal {
                    ticker.run_bar();
                } else {
                    ticker.run_plain();
                }
            })
            // Without a thread there is no display; the command itself still runs.
            .ok();
        Progress {
            done,
            stop,
            ticker: handle,
        }
    }

    /// Counts `n` more items done (any thread).
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// A handle worker threads can add to.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }

    /// Stops and erases the display.
    pub fn finish(mut self) {
        self.stop_ticker();
    }

    fn stop_ticker(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_ticker();
    }
}

impl Ticker {
    /// Waits up to `d`; true once stopped.
    fn wait_stopped(&self, d: Duration) -> bool {
        let (lock, cvar) = &*self.stop;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = cvar
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }

    fn run_bar(&self) {
        let bar = match self.goal {
            Goal::Items(n) => ProgressBar::new(n),
            Goal::Time(d) => ProgressBar::new(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            Goal::Open => ProgressBar::new_spinner(),
        };
        let template = match self.goal {
            Goal::Open => "{spinner} {prefix} [{elapsed_precise}] {msg}",
            // Fits 80 columns with the longest message (`bench write`, billions of entries).
            _ => "{prefix} [{bar:16}] {percent:>3}% {msg} ETA {eta}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_prefix(self.label.clone());
        loop {
            let stopped = self.wait_stopped(BAR_INTERVAL);
            let done = self.done.load(Ordering::Relaxed);
            let elapsed = self.start.elapsed();
            match self.goal {
                Goal::Items(_) => bar.set_position(done),
                Goal::Time(d) => {
                    bar.set_position(u64::try_from(elapsed.min(d).as_millis()).unwrap_or(u64::MAX))
                }
                Goal::Open => bar.tick(),
            }
            bar.set_message(self.with_detail(self.bar_message(done, elapsed)));
            if stopped {
                bar.finish_and_clear();
                return;
            }
        }
    }

    fn run_plain(&self) {
        let mut last = (Instant::now(), 0u64);
        while !self.wait_stopped(PLAIN_INTERVAL) {
            let now = Instant::now();
            let done = self.done.load(Ordering::Relaxed);
            let elapsed = self.start.elapsed();
            let recent = (done - last.1.min(done)) as f64 / (now - last.0).as_secs_f64();
            last = (now, done);
            let share = match self.goal {
                Goal::Items(n) if n > 0 => Some(done as f64 / n as f64),
                Goal::Time(d) if !d.is_zero() => {
                    Some((elapsed.as_secs_f64() / d.as_secs_f64()).min(1.0))
                }
                _ => None,
            };
            let mut line = format!("{}: ", self.label);
            if let Some(s) = share {
                line.push_str(&format!("{:.0}% ", s * 100.0));
            }
            line.push_str(&self.with_detail(format!(
                "{}, now {}/s",
                self.counts(done, elapsed),
                self.amount(recent),
            )));
            line.push_str(&format!(", {} elapsed", fmt_duration(elapsed)));
            if let Some(s) = share.filter(|&s| s > 0.0) {
                let eta = elapsed.as_secs_f64() * (1.0 - s) / s;
                line.push_str(&format!(
                    ", ETA {}",
                    fmt_duration(Duration::from_secs_f64(eta))
                ));
            }
            eprintln!("{line}");
        }
    }

    /// `message`, then the detail if there is one.
    fn with_detail(&self, message: String) -> String {
        match &self.detail {
            Some(detail) if message.is_empty() => detail(),
            Some(detail) => format!("{message}, {}", detail()),
            None => message,
        }
    }

    /// `123,456/1,000,000 entries, 98,765 entries/s` (average since the start).
    fn counts(&self, done: u64, elapsed: Duration) -> String {
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        match self.goal {
            Goal::Items(n) if self.unit == BYTES => format!(
                "{}/{}, {}/s",
                fmt_bytes(done),
                fmt_bytes(n),
                self.amount(rate)
            ),
            Goal::Items(n) => format!(
                "{}/{} {}, {}/s",
                fmt_count(done),
                fmt_count(n),
                self.unit,
                self.amount(rate)
            ),
            _ if self.unit.is_empty() => String::new(),
            _ => format!("{}, {}/s", self.amount(done as f64), self.amount(rate)),
        }
    }

    /// The short form of [`Ticker::counts`] for the bar: `123,456/1,000,000 entries 98,765/s`.
    fn bar_message(&self, done: u64, elapsed: Duration) -> String {
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        match self.goal {
            _ if self.unit.is_empty() => String::new(),
            Goal::Items(n) if self.unit == BYTES => {
                format!(
                    "{}/{} {}/s",
                    fmt_bytes(done),
                    fmt_bytes(n),
                    self.amount(rate)
                )
            }
            Goal::Items(n) => format!(
                "{}/{} {} {}/s",
                fmt_count(done),
                fmt_count(n),
                self.unit,
                fmt_rate(rate)
            ),
            _ => format!("{} {}/s", self.amount(done as f64), fmt_rate(rate)),
        }
    }

    /// `n` of the unit: a byte size for [`BYTES`], else a count and the unit's name.
    fn amount(&self, n: f64) -> String {
        if self.unit == BYTES {
            fmt_bytes(if n.is_finite() && n > 0.0 {
                n as u64
            } else {
                0
            })
        } else {
            format!("{} {}", fmt_rate(n), self.unit)
        }
    }
}
