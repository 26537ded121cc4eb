//! Decisions per second in Redis mode, for `bench/pacing.sh` to set beside redis-benchmark's
//! raw round trips on the same Redis: `RedisLimiter::decide` from `CONCURRENCY` tasks on one
//! thread (redis-benchmark is one thread too) for `SECS` seconds over `KEYS` keys at `RATE`
//! per second each, then a check that no key was admitted more than `1 + RATE · elapsed`.
//!
//! `PACING_BENCH_REDIS_URL=redis://127.0.0.1:6379/ cargo bench -p trunkline-pacing --bench
//! redis_decisions`; prints one line of `key=value` pairs. Without the URL it says so and exits.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use trunkline_pacing::{Quota, RedisLimiter, Verdict};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let Ok(url) = std::env::var("PACING_BENCH_REDIS_URL") else {
        eprintln!("redis_decisions: set PACING_BENCH_REDIS_URL (bench/pacing.sh does)");
        return;
    };
    let concurrency: usize = env_or("CONCURRENCY", 50);
    let secs: f64 = env_or("SECS", 10.0);
    let keys: usize = env_or("KEYS", 1000);
    let rate: u32 = env_or("RATE", 100);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(tokio::task::LocalSet::new().run_until(async move {
        let limiter = Rc::new(RedisLimiter::new(&SecretString::from(url)).expect("Redis URL"));
        // A fresh key space per run, so earlier runs' state does not count.
        let run = std::process::id();
        let names: Rc<Vec<String>> = Rc::new((0..keys).map(|k| format!("bench/{run}/{k}")).collect());
        let quota = Quota::new(rate, 1);
        // Warm-up: connect and load the script.
        limiter.decide("bench/warm-up", quota, Duration::ZERO).await.expect("Redis answers");
        let admitted = Rc::new(RefCell::new(vec![0u64; keys]));
        let errors = Rc::new(RefCell::new(0u64));
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(secs);
        let tasks: Vec<_> = (0..concurrency)
            .map(|task| {
                let (limiter, names, admitted, errors) =
                    (limiter.clone(), names.clone(), admitted.clone(), errors.clone());
                tokio::task::spawn_local(async move {
                    let mut decisions = 0u64;
                    let mut k = task % names.len();
                    while Instant::now() < deadline {
                        match limiter.decide(&names[k], quota, Duration::ZERO).await {
                            Ok(Verdict::Admit { .. }) => admitted.borrow_mut()[k] += 1,
                            Ok(Verdict::Reject { .. }) => {}
                            Err(_) => *errors.borrow_mut() += 1,
                        }
                        decisions += 1;
                        k = (k + concurrency) % names.len();
                    }
                    decisions
                })
            })
            .collect();
        let mut decisions = 0;
        for task in tasks {
            decisions += task.await.unwrap();
        }
        let elapsed = start.elapsed().as_secs_f64();
        let bound = 1 + (f64::from(rate) * elapsed).floor() as u64;
        let admitted = admitted.borrow();
        let violations = admitted.iter().filter(|&&n| n > bound).count();
        println!(
            "decisions={decisions} secs={elapsed:.2} per_sec={:.0} admitted={} max_per_key={} bound={bound} violations={violations} errors={} concurrency={concurrency} keys={keys} rate={rate}",
            decisions as f64 / elapsed,
            admitted.iter().sum::<u64>(),
            admitted.iter().max().unwrap(),
            errors.borrow(),
        );
    }));
}
