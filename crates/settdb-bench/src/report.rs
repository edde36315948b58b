//! The report of `settdb-bench compare`: results.csv (every step), results.md (tables with
//! SettDB's ratio to the best peer) and SVG plots drawn with plotters (throughput relative to
//! the best store per workload, latency percentiles, RSS over time during the 128 B load).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::compare::{Group, Measured, Peer};
use crate::stores::Res;

/// One step's outcome.
#[derive(Debug, Clone)]
pub struct Row {
    pub peer: Peer,
    pub group: Group,
    pub label: String,
    pub records: u64,
    pub value_size: usize,
    pub threads: usize,
    pub ops: Option<f64>,
    pub secs: Option<f64>,
    pub missing: Option<f64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub gc_secs: Option<f64>,
    pub writes: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    pub write_bytes: Option<u64>,
    pub disk_bytes: Option<u64>,
    pub rss_series: Vec<(f64, f64)>,
    /// dd's bandwidth (MB/s) writing the same bytes just before this step, if measured.
    pub dd_mb_s: Option<f64>,
    pub error: Option<String>,
}

impl Row {
    pub fn new(
        peer: Peer,
        group: Group,
        label: &str,
        records: u64,
        value_size: usize,
        threads: usize,
    ) -> Row {
        Row {
            peer,
            group,
            label: label.to_string(),
            records,
            value_size,
            threads,
            ops: None,
            secs: None,
            missing: None,
            p50: None,
            p99: None,
            p999: None,
            gc_secs: None,
            writes: None,
            peak_rss_mb: None,
            write_bytes: None,
            disk_bytes: None,
            rss_series: Vec::new(),
            dd_mb_s: None,
            error: None,
        }
    }

    pub fn fill(&mut self, m: &Measured) {
        self.ops = m.get("ops");
        self.secs = m.get("secs");
        self.missing = m.get("missing");
        self.p50 = m.get("p50_us");
        self.p99 = m.get("p99_us");
        self.p999 = m.get("p999_us");
        self.gc_secs = m.get("gc_secs");
        self.writes = m.get("writes");
        self.peak_rss_mb = Some(m.peak_rss_mb);
        self.write_bytes = Some(m.write_bytes);
        self.rss_series = m.rss_series.clone();
    }

    /// Why this row cannot be used, if it cannot.
    pub fn check(&self) -> Option<String> {
        if self.ops.is_none() || self.secs.is_none() {
            return Some("no RESULT".into());
        }
        match self.missing {
            Some(m) if m > 0.0 => Some(format!("{m} reads missed a key that exists")),
            _ => None,
        }
    }

    /// Operations per second.
    pub fn rate(&self) -> Option<f64> {
        if self.error.is_some() {
            return None;
        }
        match (self.ops, self.secs) {
            (Some(o), Some(s)) if s > 0.0 => Some(o / s),
            _ => None,
        }
    }

    /// Key and value bytes the step wrote (loads and overwrites).
    fn user_bytes(&self) -> Option<f64> {
        let per = (16 + self.value_size) as f64;
        match self.group {
            Group::Loads | Group::Scale if self.label.starts_with("load") => {
                Some(self.records as f64 * per)
            }
            Group::Overwrite => self.ops.map(|o| o * per),
            _ => None,
        }
    }

    /// Bytes written to disk per byte of keys and values.
    pub fn write_amp(&self) -> Option<f64> {
        Some(self.write_bytes? as f64 / self.user_bytes()?)
    }

    /// Bytes on disk per byte of live keys and values.
    pub fn space_amp(&self) -> Option<f64> {
        let live = self.records as f64 * (16 + self.value_size) as f64;
        Some(self.disk_bytes? as f64 / live)
    }

    pub fn summary(&self) -> String {
        if let Some(e) = &self.error {
            return format!("FAILED: {e}");
        }
        let mut s = format!("{:>12}/s", human(self.rate().unwrap_or(0.0)));
        if let Some(p) = self.p99 {
            let _ = write!(s, "  p50 {:.1} us p99 {p:.1} us", self.p50.unwrap_or(0.0));
        }
        if let Some(r) = self.peak_rss_mb {
            let _ = write!(s, "  rss {r:.0} MB");
        }
        if let Some(w) = self.write_amp() {
            let _ = write!(s, "  wamp {w:.2}");
        }
        if let Some(a) = self.space_amp() {
            let _ = write!(s, "  samp {a:.2}");
        }
        s
    }
}

/// 1234567 -> "1.23M".
pub fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0}K", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "-".into(), f)
}

/// Writes results.csv, results.md and the plots into `out`.
pub fn write(out: &Path, header: &str, peers: &[Peer], dd_mb_s: f64, rows: &[Row]) -> Res<()> {
    std::fs::write(out.join("results.csv"), csv(rows))?;
    std::fs::write(
        out.join("results.md"),
        markdown(header, peers, dd_mb_s, rows),
    )?;
    plot_throughput(&out.join("throughput.svg"), peers, rows)?;
    plot_latency(&out.join("latency.svg"), peers, rows)?;
    plot_rss(&out.join("rss.svg"), peers, rows)?;
    Ok(())
}

fn csv(rows: &[Row]) -> String {
    let mut s = String::from(
        "store,group,workload,records,value_size,threads,ops,secs,ops_per_s,p50_us,p99_us,\
         p999_us,gc_secs,writes,peak_rss_mb,write_bytes,disk_bytes,write_amp,space_amp,dd_mb_s,error\n",
    );
    let f = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.3}"));
    for r in rows {
        let _ = writeln!(
            s,
            "{},{:?},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.peer.name(),
            r.group,
            r.label,
            r.records,
            r.value_size,
            r.threads,
            f(r.ops),
            f(r.secs),
            f(r.rate()),
            f(r.p50),
            f(r.p99),
            f(r.p999),
            f(r.gc_secs),
            f(r.writes),
            f(r.peak_rss_mb),
            r.write_bytes.map_or(String::new(), |v| v.to_string()),
            r.disk_bytes.map_or(String::new(), |v| v.to_string()),
            f(r.write_amp()),
            f(r.space_amp()),
            f(r.dd_mb_s),
            r.error.as_deref().unwrap_or("").replace(',', ";"),
        );
    }
    s
}

/// Workload labels in plan order.
fn labels(rows: &[Row], pred: impl Fn(&Row) -> bool) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| pred(r)) {
        if !v.contains(&r.label) {
            v.push(r.label.clone());
        }
    }
    v
}

fn find<'a>(rows: &'a [Row], label: &str, peer: Peer) -> Option<&'a Row> {
    rows.iter().find(|r| r.label == label && r.peer == peer)
}

fn markdown(header: &str, peers: &[Peer], dd_mb_s: f64, rows: &[Row]) -> String {
    let mut s = String::from("# SettDB beside its peers\n\n");
    let _ = writeln!(s, "{header}\n");
    s.push_str("Stores and how each is configured (its own docs' advice):\n\n");
    for p in peers {
        let _ = writeln!(s, "- **{}**: {}", p.name(), p.config());
    }
    s.push_str(
        "\nEvery step is its own process, run alone; keys are 16 random bytes, values \
         incompressible, writes unsynced in batches of 1,000 (docs/bench/protocol.md). Loads \
         are timed from open to close returned. `-` = not run (db_bench has no such \
         workload).\n\n## Throughput (operations/s)\n\n",
    );
    let others: Vec<Peer> = peers
        .iter()
        .copied()
        .filter(|p| *p != Peer::Settdb)
        .collect();
    store_header(&mut s, peers, Some("settdb / best peer"));
    for label in labels(rows, |_| true) {
        let _ = write!(s, "| {label} |");
        for &p in peers {
            let cell = match find(rows, &label, p) {
                Some(r) if r.error.is_some() => "failed".to_string(),
                Some(r) => opt(r.rate(), human),
                None => "-".into(),
            };
            let _ = write!(s, " {cell} |");
        }
        let best = others
            .iter()
            .filter_map(|&p| find(rows, &label, p).and_then(|r| r.rate()).map(|x| (x, p)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let mine = find(rows, &label, Peer::Settdb).and_then(|r| r.rate());
        let ratio = match (mine, best) {
            (Some(m), Some((b, p))) => format!("{:.2}x ({})", m / b, p.name()),
            _ => "-".into(),
        };
        let _ = writeln!(s, " {ratio} |");
    }

    let loads = labels(rows, |r| r.label.starts_with("load"));
    if !loads.is_empty() {
        let _ = writeln!(
            s,
            "\n## Loads: MB/s, peak RSS (MB), write amplification (bytes written to disk / \
             bytes of keys and values), space amplification (bytes on disk after close / \
             bytes of keys and values)\n\ndd with fdatasync at the start: {dd_mb_s:.0} MB/s; \
             `of dd` compares a 16 KiB load with dd writing the same bytes just before it \
             (the disk's bandwidth swings within a run).\n"
        );
        s.push_str(
            "| load | store | entries/s | MB/s | of dd | peak RSS | write amp | space amp |\n",
        );
        s.push_str("|---|---|---|---|---|---|---|---|\n");
        for label in &loads {
            for &p in peers {
                if let Some(r) = find(rows, label, p).filter(|r| r.error.is_none()) {
                    let mb_s = r.rate().map(|x| x * (16 + r.value_size) as f64 / 1e6);
                    let _ = writeln!(
                        s,
                        "| {label} | {} | {} | {} | {} | {} | {} | {} |",
                        p.name(),
                        opt(r.rate(), human),
                        opt(mb_s, |x| format!("{x:.0}")),
                        opt(mb_s, |x| {
                            let dd = r.dd_mb_s.unwrap_or(dd_mb_s);
                            format!("{:.0}% of {dd:.0}", 100.0 * x / dd)
                        }),
                        opt(r.peak_rss_mb, |x| format!("{x:.0}")),
                        opt(r.write_amp(), |x| format!("{x:.2}")),
                        opt(r.space_amp(), |x| format!("{x:.2}")),
                    );
                }
            }
        }
    }

    let lat = labels(rows, |r| r.p99.is_some());
    if !lat.is_empty() {
        s.push_str("\n## Latency (microseconds, p50 / p99 / p99.9)\n\n");
        store_header(&mut s, peers, None);
        for label in &lat {
            let _ = write!(s, "| {label} |");
            for &p in peers {
                let cell = find(rows, label, p)
                    .filter(|r| r.error.is_none() && r.p99.is_some())
                    .map_or("-".into(), |r| {
                        format!(
                            "{:.1} / {:.1} / {:.1}",
                            r.p50.unwrap_or(0.0),
                            r.p99.unwrap_or(0.0),
                            r.p999.unwrap_or(0.0)
                        )
                    });
                let _ = write!(s, " {cell} |");
            }
            s.push('\n');
        }
    }

    let ow = labels(rows, |r| r.group == Group::Overwrite);
    if !ow.is_empty() {
        s.push_str(
            "\n## Overwrite with space reclamation\n\nEvery record overwritten once on average \
             (uniform keys), then the store's reclamation until it makes no more progress.\n\n\
             | workload | store | overwrites/s | reclaim s | space amp after | write amp |\n\
             |---|---|---|---|---|---|\n",
        );
        for label in &ow {
            for &p in peers {
                if let Some(r) = find(rows, label, p).filter(|r| r.error.is_none()) {
                    let _ = writeln!(
                        s,
                        "| {label} | {} | {} | {} | {} | {} |",
                        p.name(),
                        opt(r.rate(), human),
                        opt(r.gc_secs, |x| format!("{x:.1}")),
                        opt(r.space_amp(), |x| format!("{x:.2}")),
                        opt(r.write_amp(), |x| format!("{x:.2}")),
                    );
                }
            }
        }
    }

    let scale: Vec<&Row> = rows.iter().filter(|r| r.group == Group::Scale).collect();
    if !scale.is_empty() {
        s.push_str(
            "\n## Scale: the 128 B load and 2-thread reads at two sizes\n\n\
             | store | workload | small | large | large / small | peak RSS small -> large |\n\
             |---|---|---|---|---|---|\n",
        );
        for r in &scale {
            // The small run's row of the same kind.
            let small_label = if r.label.starts_with("load") {
                rows.iter()
                    .find(|x| x.peer == r.peer && x.group == Group::Loads && x.value_size == 128)
                    .map(|x| x.label.clone())
            } else {
                r.label.split(" @").next().map(str::to_string)
            };
            let small = small_label.and_then(|l| find(rows, &l, r.peer));
            let (a, b) = (small.and_then(|x| x.rate()), r.rate());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} -> {} |",
                r.peer.name(),
                r.label,
                opt(a, human),
                opt(b, human),
                match (a, b) {
                    (Some(a), Some(b)) => format!("{:.2}", b / a),
                    _ => "-".into(),
                },
                opt(small.and_then(|x| x.peak_rss_mb), |x| format!("{x:.0}")),
                opt(r.peak_rss_mb, |x| format!("{x:.0}")),
            );
        }
    }

    let failed: Vec<&Row> = rows.iter().filter(|r| r.error.is_some()).collect();
    if !failed.is_empty() {
        s.push_str("\n## Failed steps\n\n");
        for r in failed {
            let _ = writeln!(
                s,
                "- {} {}: {}",
                r.peer.name(),
                r.label,
                r.error.as_deref().unwrap_or("")
            );
        }
    }
    s.push_str(
        "\nPlots: throughput.svg (each store's throughput over the best store's, per \
         workload), latency.svg (p99 latency per workload), rss.svg (RSS during the 128 B \
         load).\n",
    );
    s
}

/// A table header with a column per store (and `extra` last).
fn store_header(s: &mut String, peers: &[Peer], extra: Option<&str>) {
    s.push_str("| workload |");
    for p in peers {
        let _ = write!(s, " {} |", p.name());
    }
    if let Some(e) = extra {
        let _ = write!(s, " {e} |");
    }
    s.push_str("\n|---|");
    for _ in 0..peers.len() + usize::from(extra.is_some()) {
        s.push_str("---|");
    }
    s.push('\n');
}

fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 7] = [
        RGBColor(200, 60, 40),
        RGBColor(60, 110, 200),
        RGBColor(80, 160, 70),
        RGBColor(150, 150, 150),
        RGBColor(230, 160, 30),
        RGBColor(140, 80, 180),
        RGBColor(40, 170, 170),
    ];
    C[i % C.len()]
}

fn plot_err<E: std::fmt::Debug>(e: E) -> crate::stores::BoxErr {
    format!("plot: {e:?}").into()
}

/// Draws `chart`'s legend and writes the file `root` draws to.
fn finish<'a>(
    chart: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
) -> Res<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

/// Grouped horizontal bars: per workload, each store's value from `value`.
#[allow(clippy::too_many_arguments)]
fn grouped_bars(
    path: &Path,
    title: &str,
    x_desc: &str,
    peers: &[Peer],
    rows: &[Row],
    workloads: &[String],
    log_x: bool,
    value: impl Fn(&Row) -> Option<f64>,
) -> Res<()> {
    if workloads.is_empty() {
        return Ok(());
    }
    let per = peers.len() as f64 + 1.0;
    let height = (workloads.len() as f64 * per * 9.0 + 120.0) as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let vals: Vec<f64> = rows.iter().filter_map(&value).collect();
    let max = vals.iter().copied().fold(0.0, f64::max).max(1e-9);
    let min = vals
        .iter()
        .copied()
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min)
        .min(max);
    let y_max = workloads.len() as f64 * per;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(230);
    let label_of = |y: &f64| {
        let i = (*y / per).floor() as usize;
        if (*y - (i as f64 * per + per / 2.0)).abs() < 0.5 {
            workloads.get(i).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    // A log axis is drawn as a linear axis of log10 values, labelled with the values.
    let scale = |v: f64| if log_x { v.max(1e-9).log10() } else { v };
    let (x0, x1) = if log_x {
        (scale(min * 0.8), scale(max * 1.2))
    } else {
        (0.0, max * 1.05)
    };
    let x_label = |x: &f64| {
        let v = if log_x { 10f64.powf(*x) } else { *x };
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    let mut chart = builder
        .build_cartesian_2d(x0..x1, y_max..0.0)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_label_formatter(&x_label)
        .y_labels(workloads.len() * per as usize)
        .y_label_formatter(&label_of)
        .disable_y_mesh()
        .draw()
        .map_err(plot_err)?;
    for (pi, &p) in peers.iter().enumerate() {
        let bars = workloads.iter().enumerate().filter_map(|(wi, w)| {
            let v = scale(find(rows, w, p).and_then(&value)?);
            let y0 = wi as f64 * per + pi as f64 + 0.5;
            Some(Rectangle::new(
                [(x0, y0), (v, y0 + 0.9)],
                color(pi).filled(),
            ))
        });
        chart
            .draw_series(bars)
            .map_err(plot_err)?
            .label(p.name())
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 10, y + 5)], color(pi).filled())
            });
    }
    finish(&mut chart, &root)
}

fn plot_throughput(path: &Path, peers: &[Peer], rows: &[Row]) -> Res<()> {
    let workloads = labels(rows, |r| r.rate().is_some());
    let best: BTreeMap<String, f64> = workloads
        .iter()
        .map(|w| {
            let b = rows
                .iter()
                .filter(|r| &r.label == w)
                .filter_map(|r| r.rate())
                .fold(0.0, f64::max);
            (w.clone(), b)
        })
        .collect();
    grouped_bars(
        path,
        "Throughput relative to the best store (1.0 = best)",
        "throughput / best store's",
        peers,
        rows,
        &workloads,
        false,
        |r| Some(r.rate()? / best.get(&r.label).copied().filter(|b| *b > 0.0)?),
    )
}

fn plot_latency(path: &Path, peers: &[Peer], rows: &[Row]) -> Res<()> {
    let workloads = labels(rows, |r| r.p99.is_some() && r.error.is_none());
    grouped_bars(
        path,
        "p99 latency (microseconds, log scale)",
        "p99 latency (us)",
        peers,
        rows,
        &workloads,
        true,
        |r| r.p99.filter(|_| r.error.is_none()),
    )
}

fn plot_rss(path: &Path, peers: &[Peer], rows: &[Row]) -> Res<()> {
    let series: Vec<(Peer, &Row)> = peers
        .iter()
        .filter_map(|&p| {
            rows.iter()
                .find(|r| {
                    r.peer == p
                        && r.group == Group::Loads
                        && r.value_size == 128
                        && !r.rss_series.is_empty()
                })
                .map(|r| (p, r))
        })
        .collect();
    if series.is_empty() {
        return Ok(());
    }
    let t_max = series
        .iter()
        .flat_map(|(_, r)| r.rss_series.iter().map(|s| s.0))
        .fold(1.0, f64::max);
    let m_max = series
        .iter()
        .flat_map(|(_, r)| r.rss_series.iter().map(|s| s.1))
        .fold(1.0, f64::max);
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("RSS during the {}", series[0].1.label),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max * 1.02, 0.0..m_max * 1.1)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("RSS (MB)")
        .draw()
        .map_err(plot_err)?;
    for (p, r) in &series {
        let i = peers.iter().position(|x| x == p).unwrap_or(0);
        chart
            .draw_series(LineSeries::new(
                r.rss_series.iter().copied(),
                color(i).stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(p.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 15, y)], color(i).stroke_width(2))
            });
    }
    finish(&mut chart, &root)
}
