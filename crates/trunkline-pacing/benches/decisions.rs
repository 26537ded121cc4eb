//! Decisions per second in memory: trunkline's `MemoryLimiter` against raw `governor` (the
//! ceiling), on the same machine in one run. `cargo bench -p trunkline-pacing --bench decisions`;
//! figures in bench/RESULTS.md ("Call pacing").
//!
//! - `hot_key/*`: one key, every call admitted (rate so high the interval is 1 ns), so every
//!   decision writes: trunkline vs governor's direct limiter (no key lookup at all, the
//!   absolute ceiling) and governor's keyed limiter.
//! - `refused/*`: one key at 1 per second, so all but the first are refused (no write).
//! - `keys_10k/*`: 10,000 keys in turn, the like-for-like case for a keyed limiter.
//! - `two_threads/*`: both cores deciding on one key each, in parallel.
//!
//! Before the timings, an exactness run: two threads decide as fast as they can for 2 s on 100
//! keys at 1,000 per second each; no key may be admitted more than `1 + 1000 · elapsed` times.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use governor::{Quota as GovernorQuota, RateLimiter};
use trunkline_pacing::{MemoryLimiter, Quota};

fn hot_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("hot_key");
    group.throughput(Throughput::Elements(1));
    let ours = MemoryLimiter::new();
    let quota = Quota::new(u32::MAX, 1);
    group.bench_function("trunkline", |b| {
        b.iter(|| ours.decide(black_box("tenant/key/carrier"), quota, Duration::ZERO))
    });
    let direct = RateLimiter::direct(GovernorQuota::per_second(NonZeroU32::MAX));
    group.bench_function("governor_direct", |b| b.iter(|| direct.check()));
    let keyed = RateLimiter::keyed(GovernorQuota::per_second(NonZeroU32::MAX));
    let key = "tenant/key/carrier".to_owned();
    group.bench_function("governor_keyed", |b| {
        b.iter(|| keyed.check_key(black_box(&key)))
    });
    group.finish();
}

fn refused(c: &mut Criterion) {
    let mut group = c.benchmark_group("refused");
    group.throughput(Throughput::Elements(1));
    let ours = MemoryLimiter::new();
    let quota = Quota::new(1, 1);
    group.bench_function("trunkline", |b| {
        b.iter(|| ours.decide(black_box("tenant/key/carrier"), quota, Duration::ZERO))
    });
    let direct = RateLimiter::direct(GovernorQuota::per_second(NonZeroU32::MIN));
    group.bench_function("governor_direct", |b| b.iter(|| direct.check()));
    let keyed = RateLimiter::keyed(GovernorQuota::per_second(NonZeroU32::MIN));
    let key = "tenant/key/carrier".to_owned();
    group.bench_function("governor_keyed", |b| {
        b.iter(|| keyed.check_key(black_box(&key)))
    });
    group.finish();
}

fn keys_10k(c: &mut Criterion) {
    let mut group = c.benchmark_group("keys_10k");
    group.throughput(Throughput::Elements(1));
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("6f1c2d3e-4b5a-4c6d-8e7f-{i:012}/key/carrier-{i}"))
        .collect();
    let ours = MemoryLimiter::new();
    let quota = Quota::new(5, 1);
    let mut i = 0;
    group.bench_function("trunkline", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            ours.decide(&keys[i], quota, Duration::ZERO)
        })
    });
    let keyed = RateLimiter::keyed(GovernorQuota::per_second(NonZeroU32::new(5).unwrap()));
    let mut i = 0;
    group.bench_function("governor_keyed", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            keyed.check_key(&keys[i])
        })
    });
    group.finish();
}

/// Runs `decide` on two threads for `iters` decisions in all; returns the wall time.
fn on_two_threads(iters: u64, decide: Arc<dyn Fn(usize) + Send + Sync>) -> Duration {
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|thread| {
            let (decide, barrier) = (decide.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                for _ in 0..iters / 2 {
                    decide(thread);
                }
                start.elapsed()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap()
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("two_threads");
    group.throughput(Throughput::Elements(1));
    let keys = [
        "tenant/key/carrier-0".to_owned(),
        "tenant/key/carrier-1".to_owned(),
    ];
    let ours = Arc::new(MemoryLimiter::new());
    let quota = Quota::new(u32::MAX, 1);
    {
        let keys = keys.clone();
        group.bench_function("trunkline", |b| {
            let (ours, keys) = (ours.clone(), keys.clone());
            b.iter_custom(|iters| {
                let (ours, keys) = (ours.clone(), keys.clone());
                on_two_threads(
                    iters,
                    Arc::new(move |t| {
                        black_box(ours.decide(&keys[t], quota, Duration::ZERO));
                    }),
                )
            })
        });
    }
    let keyed = Arc::new(RateLimiter::keyed(GovernorQuota::per_second(
        NonZeroU32::MAX,
    )));
    group.bench_function("governor_keyed", |b| {
        b.iter_custom(|iters| {
            let (keyed, keys) = (keyed.clone(), keys.clone());
            on_two_threads(
                iters,
                Arc::new(move |t| {
                    let _ = black_box(keyed.check_key(&keys[t]));
                }),
            )
        })
    });
    group.finish();
}

/// Prints and checks the admissions per key of a flat-out run; panics on a violation.
fn verify_exactness() {
    const KEYS: usize = 100;
    const RATE: u32 = 1000;
    let limiter = Arc::new(MemoryLimiter::new());
    let quota = Quota::new(RATE, 1);
    let start = Instant::now();
    let counts: Vec<Vec<u64>> = (0..2)
        .map(|thread| {
            let limiter = limiter.clone();
            std::thread::spawn(move || {
                let mut admitted = vec![0u64; KEYS];
                let mut decisions = 0u64;
                let keys: Vec<String> = (0..KEYS).map(|k| format!("key-{k}")).collect();
                while start.elapsed() < Duration::from_secs(2) {
                    let k = (decisions as usize + thread * 7) % KEYS;
                    if let trunkline_pacing::Verdict::Admit { .. } =
                        limiter.decide(&keys[k], quota, Duration::ZERO)
                    {
                        admitted[k] += 1;
                    }
                    decisions += 1;
                }
                admitted.push(decisions);
                admitted
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    let bound = 1 + (f64::from(RATE) * elapsed).floor() as u64;
    let decisions: u64 = counts.iter().map(|c| c[KEYS]).sum();
    let per_key: Vec<u64> = (0..KEYS).map(|k| counts[0][k] + counts[1][k]).collect();
    let violations = per_key.iter().filter(|&&n| n > bound).count();
    println!(
        "exactness: {decisions} decisions in {elapsed:.2} s on 2 threads, admitted per key {}..={} \
         (bound {bound}), violations: {violations}",
        per_key.iter().min().unwrap(),
        per_key.iter().max().unwrap(),
    );
    assert_eq!(violations, 0, "a key was admitted beyond its rate");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = hot_key, refused, keys_10k, two_threads
}

fn main() {
    verify_exactness();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
