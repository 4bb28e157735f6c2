//! How the hot paths' cost grows with what they hold: a sweep, not a single point.
//!
//! - **Distinct tokens, 1 to 100,000**: a validator whose validated-token cache can hold
//!   them all (capacity `max(N, 10,000)`, the default being 10,000) validates N distinct
//!   tokens once, then `validate` is timed with the N tokens taken round-robin, so every
//!   call should be a cache hit; the bench checks how many of the N are still cached
//!   afterwards and prints it. The live heap bytes the first N validations left behind,
//!   divided by N, are the memory one cached entry costs (token copy, claims, principal,
//!   the cache's own slot), printed beside the token's length. They are counted by
//!   `allocation-counter`'s global allocator (this thread's allocations only, so the
//!   issuer's and the runtime's threads do not blur them); it also counts the
//!   allocations of one timed round, which should be none.
//! - **Named clients, 1 to 1,000**: a `TokenManager` with N names registered (all sharing
//!   the mock issuer's one client, each name its own cache entry), each warmed with one
//!   token request, then a warm `token()` is timed with the clients taken round-robin.
//!
//! A plain timed loop (`harness = false`, no criterion): each point is the median of 25
//! samples of at least 20 ms and at least one full round of its N tokens or clients,
//! taken in 5 passes over all the points of a sweep so that a burst of load from elsewhere
//! on this shared machine blurs every point a little rather than one point a lot; about
//! a second per point. The 100,000 tokens are minted once, across all cores (RS256 signing
//! takes about 0.5 ms a token: about 30 s on two idle cores), and each point uses the
//! first N.
//!
//! Writes `target/bench-results/growth.{csv,md,svg}` (the chart with plotters' SVG
//! backend, from the same numbers). `just bench` runs it after the `auth` bench and
//! `infra/load/report.sh` puts the table and chart in BENCHMARKS.md.
//! `BENCH_GROWTH_MAX_TOKENS` lowers the top of the token sweep for a quick run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

mod common;

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plotters::prelude::*;
use shared_auth::client::{ManagedClient, TokenManager};

use common::ready;

const TOKEN_SWEEP: [usize; 6] = [1, 10, 100, 1_000, 10_000, 100_000];
const CLIENT_SWEEP: [usize; 4] = [1, 10, 100, 1_000];
/// `ValidatorConfig::validated_cache_capacity`'s default.
const DEFAULT_CAPACITY: usize = 10_000;
/// Passes over all the points of a sweep; each pass takes [`SAMPLES_PER_ROUND`] samples
/// of each point, after [`WARM_UP`].
const ROUNDS: usize = 5;
const SAMPLES_PER_ROUND: usize = 5;
const MIN_SAMPLE: Duration = Duration::from_millis(20);
const WARM_UP: Duration = Duration::from_millis(50);

/// One measured point: the median time per call and the spread of the samples.
struct Timing {
    median: f64,
    min: f64,
    max: f64,
}

struct TokenPoint {
    n: usize,
    capacity: usize,
    timing: Timing,
    bytes_per_entry: f64,
    allocations_per_call: f64,
    /// How many of the N tokens the cache still answered after the timed loop.
    resident: usize,
}

struct ClientPoint {
    n: usize,
    timing: Timing,
    allocations_per_call: f64,
}

/// The operation of one point: `run(calls)` makes `calls` calls, each on the next of the
/// point's N tokens or clients.
type Run<'a> = Box<dyn FnMut(usize) + 'a>;

/// Heap allocations per call over one round of `n` calls (made on this thread).
fn allocations_per_call(n: usize, run: &mut Run<'_>) -> f64 {
    let info = allocation_counter::measure(|| run(n));
    info.count_total as f64 / n as f64
}

/// Times every point of a sweep, interleaved: [`ROUNDS`] passes over all the points, so
/// a burst of load from elsewhere on the machine lands on a few samples of every point
/// rather than on all the samples of one. Each sample is at least `n` calls (a full
/// round of the point's tokens or clients) and at least [`MIN_SAMPLE`].
fn time_per_call(points: &mut [(usize, Run<'_>)]) -> Vec<Timing> {
    let calls: Vec<usize> = points
        .iter_mut()
        .map(|(n, run)| {
            let mut calls = (*n).max(1);
            loop {
                let start = Instant::now();
                run(calls);
                if start.elapsed() >= MIN_SAMPLE {
                    break calls;
                }
                calls *= 2;
            }
        })
        .collect();
    let mut samples = vec![Vec::new(); points.len()];
    for _ in 0..ROUNDS {
        for (((n, run), &calls), samples) in points.iter_mut().zip(&calls).zip(&mut samples) {
            // The other points have just run: caches and predictors settle first.
            let warm_up = Instant::now();
            while warm_up.elapsed() < WARM_UP {
                run((*n).max(1));
            }
            for _ in 0..SAMPLES_PER_ROUND {
                let start = Instant::now();
                run(calls);
                samples.push(start.elapsed().as_nanos() as f64 / calls as f64);
            }
        }
    }
    samples
        .into_iter()
        .map(|mut samples| {
            samples.sort_by(f64::total_cmp);
            Timing {
                median: samples[samples.len() / 2],
                min: samples[0],
                max: samples[samples.len() - 1],
            }
        })
        .collect()
}

fn token_sweep(
    runtime: &tokio::runtime::Runtime,
    issuer: &mock_issuer::IssuerHandle,
    tokens: &[String],
) -> Vec<TokenPoint> {
    // One-time allocations (thread-locals, lazily built statics of the validation path)
    // happen here, with a throwaway validator, not inside the first measured point.
    let warmup = common::validator(runtime, issuer, DEFAULT_CAPACITY);
    for token in tokens.iter().take(100).chain(tokens.iter().take(100)) {
        ready(warmup.validate(token)).unwrap();
    }
    drop(warmup);

    // One validator per point, all kept until the timing is done (about 170 MB at
    // 100,000 tokens), each having validated its N tokens once.
    let sweep: Vec<_> = TOKEN_SWEEP
        .into_iter()
        .filter(|&n| n <= tokens.len())
        .map(|n| {
            let capacity = n.max(DEFAULT_CAPACITY);
            let validator = common::validator(runtime, issuer, capacity);
            let first = allocation_counter::measure(|| {
                for token in &tokens[..n] {
                    drop(ready(validator.validate(token)).unwrap());
                }
            });
            (
                n,
                capacity,
                validator,
                first.bytes_current as f64 / n as f64,
            )
        })
        .collect();
    let mut runs: Vec<(usize, Run<'_>)> = sweep
        .iter()
        .map(|(n, _, validator, _)| {
            let (n, mut i) = (*n, 0);
            let run: Run<'_> = Box::new(move |calls| {
                for _ in 0..calls {
                    black_box(ready(validator.validate(&tokens[i])).unwrap());
                    i += 1;
                    if i == n {
                        i = 0;
                    }
                }
            });
            (n, run)
        })
        .collect();
    let allocations: Vec<f64> = runs
        .iter_mut()
        .map(|(n, run)| allocations_per_call(*n, run))
        .collect();
    let timings = time_per_call(&mut runs);
    drop(runs);

    sweep
        .into_iter()
        .zip(timings)
        .zip(allocations)
        .map(
            |(((n, capacity, validator, bytes_per_entry), timing), allocations_per_call)| {
                let resident = tokens[..n]
                    .iter()
                    .filter(|t| validator.validated(t.as_bytes()).is_some())
                    .count();
                println!(
                    "growth: validate, {n} distinct tokens (cache capacity {capacity}): \
                     {:.1} ns/call (samples {:.1}..{:.1}), {allocations_per_call} allocations/call, \
                     {bytes_per_entry:.0} bytes/entry, {resident}/{n} still cached",
                    timing.median, timing.min, timing.max
                );
                TokenPoint {
                    n,
                    capacity,
                    timing,
                    bytes_per_entry,
                    allocations_per_call,
                    resident,
                }
            },
        )
        .collect()
}

fn client_sweep(
    runtime: &tokio::runtime::Runtime,
    issuer: &mock_issuer::IssuerHandle,
) -> Vec<ClientPoint> {
    // One manager per point, each client warmed with one token request.
    let sweep: Vec<Vec<ManagedClient>> = CLIENT_SWEEP
        .into_iter()
        .map(|n| {
            let manager = TokenManager::builder().build().unwrap();
            let clients: Vec<ManagedClient> = (0..n)
                .map(|i| {
                    manager
                        .register(format!("client-{i:04}"), common::client(issuer))
                        .unwrap()
                })
                .collect();
            runtime.block_on(async {
                for client in &clients {
                    client.token().await.unwrap();
                }
            });
            clients
        })
        .collect();
    let mut runs: Vec<(usize, Run<'_>)> = sweep
        .iter()
        .map(|clients| {
            let (n, mut i) = (clients.len(), 0);
            let run: Run<'_> = Box::new(move |calls| {
                for _ in 0..calls {
                    black_box(ready(clients[i].token()).unwrap());
                    i += 1;
                    if i == n {
                        i = 0;
                    }
                }
            });
            (n, run)
        })
        .collect();
    let allocations: Vec<f64> = runs
        .iter_mut()
        .map(|(n, run)| allocations_per_call(*n, run))
        .collect();
    let timings = time_per_call(&mut runs);
    CLIENT_SWEEP
        .into_iter()
        .zip(timings)
        .zip(allocations)
        .map(|((n, timing), allocations_per_call)| {
            println!(
                "growth: token(), {n} named clients: {:.1} ns/call (samples {:.1}..{:.1}), \
                 {allocations_per_call} allocations/call",
                timing.median, timing.min, timing.max
            );
            ClientPoint {
                n,
                timing,
                allocations_per_call,
            }
        })
        .collect()
}

/// Where bench.sh and report.sh look: the workspace's `target/bench-results`.
fn results_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results")
}

/// The 1-minute load average: the machine is shared, and a reader of the table should
/// know how busy it was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The output of a command (for the header line), or "unknown".
fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn csv(tokens: &[TokenPoint], clients: &[ClientPoint], token_bytes: usize) -> String {
    let mut out = String::from(
        "sweep,n,ns_per_call,ns_min,ns_max,allocations_per_call,bytes_per_entry,token_bytes,cache_capacity,resident\n",
    );
    for p in tokens {
        let t = &p.timing;
        writeln!(
            out,
            "validate,{},{:.1},{:.1},{:.1},{},{:.0},{token_bytes},{},{}",
            p.n,
            t.median,
            t.min,
            t.max,
            p.allocations_per_call,
            p.bytes_per_entry,
            p.capacity,
            p.resident
        )
        .unwrap();
    }
    for p in clients {
        let t = &p.timing;
        writeln!(
            out,
            "token,{},{:.1},{:.1},{:.1},{},,,,",
            p.n, t.median, t.min, t.max, p.allocations_per_call
        )
        .unwrap();
    }
    out
}

/// 1234567 -> "1,234,567".
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn markdown(
    tokens: &[TokenPoint],
    clients: &[ClientPoint],
    token_bytes: usize,
    load_average: &str,
) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "Measured {date} on {cores} cores, {system}; command: `just bench` \
         (`cargo bench -p shared-auth --bench growth`: median of {samples} timed samples per \
         point, bench profile; load average {load_average}).",
        date = command_line("date", &["-u", "+%Y-%m-%dT%H:%MZ"]),
        cores = std::thread::available_parallelism().map_or(1, |n| n.get()),
        system = command_line("uname", &["-sr"]),
        samples = ROUNDS * SAMPLES_PER_ROUND,
    )
    .unwrap();
    out.push_str(
        "\n| distinct tokens | `validate`, round-robin | allocations per call | heap bytes per cached entry | still cached after the run |\n\
         | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for p in tokens {
        writeln!(
            out,
            "| {} | {} ns | {} | {} | {} |",
            grouped(p.n),
            grouped(p.timing.median.round() as usize),
            p.allocations_per_call,
            grouped(p.bytes_per_entry.round().max(0.0) as usize),
            grouped(p.resident),
        )
        .unwrap();
    }
    writeln!(
        out,
        "\nEach token is {token_bytes} bytes (RS256, Cognito profile). The cache's capacity is \
         max(N, {}) so that it can hold all N; the last column says whether it did \
         (every call a hit when it equals N).\n",
        grouped(DEFAULT_CAPACITY)
    )
    .unwrap();
    out.push_str(
        "| named clients | warm `token()`, round-robin | allocations per call |\n| ---: | ---: | ---: |\n",
    );
    for p in clients {
        writeln!(
            out,
            "| {} | {} ns | {} |",
            grouped(p.n),
            grouped(p.timing.median.round() as usize),
            p.allocations_per_call
        )
        .unwrap();
    }
    out
}

/// 100000.0 -> "100k": the log-axis labels.
fn axis_count(x: f64) -> String {
    match x.round() as usize {
        n if n >= 1_000 && n.is_multiple_of(1_000) => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// One panel: a line with its points, each point labelled with its value.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    points: &[(f64, f64)],
    color: RGBColor,
) {
    let x_max = points.iter().map(|p| p.0).fold(1.0, f64::max) * 2.0;
    let y_max = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d((0.5f64..x_max).log_scale(), 0f64..y_max)
        .unwrap();
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .light_line_style(BLACK.mix(0.04))
        .x_label_formatter(&|x| axis_count(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .unwrap();
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(2),
        ))
        .unwrap();
    chart
        .draw_series(points.iter().map(|&(x, y)| {
            EmptyElement::at((x, y))
                + Circle::new((0, 0), 4, color.filled())
                + Text::new(format!("{y:.0}"), (-8, -18), ("sans-serif", 12))
        }))
        .unwrap();
}

fn chart(path: &Path, tokens: &[TokenPoint], clients: &[ClientPoint], token_bytes: usize) {
    let root = SVGBackend::new(path, (1260, 420)).into_drawing_area();
    root.fill(&WHITE).unwrap();
    let panels = root.split_evenly((1, 3));
    let as_points = |f: &dyn Fn(&TokenPoint) -> f64| -> Vec<(f64, f64)> {
        tokens.iter().map(|p| (p.n as f64, f(p))).collect()
    };
    panel(
        &panels[0],
        "validate(): ns per call (cache hits)",
        ("distinct tokens (log)", "ns per call"),
        &as_points(&|p| p.timing.median),
        BLUE,
    );
    panel(
        &panels[1],
        &format!("heap bytes per cached token ({token_bytes}-byte tokens)"),
        ("distinct tokens (log)", "bytes per entry"),
        &as_points(&|p| p.bytes_per_entry),
        RED,
    );
    panel(
        &panels[2],
        "warm token(): ns per call",
        ("named clients (log)", "ns per call"),
        &clients
            .iter()
            .map(|p| (p.n as f64, p.timing.median))
            .collect::<Vec<_>>(),
        RGBColor(0, 140, 60),
    );
    root.present().unwrap();
}

fn main() {
    let started = Instant::now();
    let load_at_start = load_average();
    let top = std::env::var("BENCH_GROWTH_MAX_TOKENS")
        .ok()
        .map(|v| {
            v.parse::<usize>()
                .expect("BENCH_GROWTH_MAX_TOKENS: a number")
        })
        .unwrap_or(TOKEN_SWEEP[TOKEN_SWEEP.len() - 1]);
    let runtime = common::runtime();
    let issuer = common::start_issuer(&runtime);

    let mint_start = Instant::now();
    let tokens = common::mint(&issuer, top);
    let token_bytes = tokens[0].len();
    println!(
        "growth: minted {} tokens of {token_bytes} bytes in {:.1} s",
        grouped(tokens.len()),
        mint_start.elapsed().as_secs_f64()
    );

    let token_points = token_sweep(&runtime, &issuer, &tokens);
    drop(tokens);
    let client_points = client_sweep(&runtime, &issuer);

    let dir = results_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    std::fs::write(
        dir.join("growth.csv"),
        csv(&token_points, &client_points, token_bytes),
    )
    .unwrap();
    std::fs::write(
        dir.join("growth.md"),
        markdown(
            &token_points,
            &client_points,
            token_bytes,
            &format!(
                "{load_at_start} at the start, {} at the end",
                load_average()
            ),
        ),
    )
    .unwrap();
    chart(
        &dir.join("growth.svg"),
        &token_points,
        &client_points,
        token_bytes,
    );
    println!(
        "growth: wrote {}/growth.{{csv,md,svg}} in {:.0} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
}
