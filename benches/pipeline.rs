//! In-process cost of one reconcile's CPU work for one Secret file, from a
//! single certificate up to a full 1 MiB Secret: parse (PEM, X.509, subject
//! hash), assemble (policy, merge and deduplication against the roots, render
//! the PEM bundle, SHA-256) and the hashed-directory names and files that
//! publish writes. Prints a table, the per-certificate cost and a linear fit.
//!
//! `cargo bench --bench pipeline`. A `harness = false` bench with its own
//! timing loop (median of samples, each long enough for the clock) rather than
//! criterion: criterion would add ~40 crates to Cargo.lock and a minute of
//! compiling on a shared 2-core machine for statistics this bench does not need.
//!
//! Environment: `TI_BENCH_KEY` = a PKCS#8 RSA key (RSA 2048 certificates, the
//! usual private-CA size; else ECDSA P-256), `TI_BENCH_JSON` = write the
//! results there, `TI_BENCH_QUICK` = fewer samples.

#[path = "../examples/gen_cas.rs"]
#[allow(dead_code)]
mod gen_cas;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use trust_injector::base::embedded_roots;
use trust_injector::bundle::assemble;
use trust_injector::parse::parse_file;
use trust_injector::policy::Policy;

const SECRET_MAX: usize = 1024 * 1024;

struct Point {
    certs: usize,
    bytes: usize,
    parse: f64,
    assemble: f64,
    hashed: f64,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would run us too.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::var_os("TI_BENCH_QUICK").is_some();
    let key_path = std::env::var_os("TI_BENCH_KEY").map(PathBuf::from);
    let key = gen_cas::load_key(key_path.as_deref());

    // As many certificates as fit in one 1 MiB Secret value.
    let mut pems = Vec::new();
    let mut total = 0;
    loop {
        let pem = gen_cas::ca_pem(&key, "b", pems.len());
        if total + pem.len() > SECRET_MAX {
            break;
        }
        total += pem.len();
        pems.push(pem);
    }
    let full = pems.len();
    let mut sizes: Vec<usize> = [1, 10, 50, 100, 200, 400, 600]
        .into_iter()
        .filter(|&n| n < full)
        .collect();
    sizes.push(full);

    let (roots, _) = embedded_roots();
    let policy = Policy::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let path = PathBuf::from("/secret/ca.crt");
    let samples = if quick { 5 } else { 15 };
    let sample_time = Duration::from_millis(if quick { 10 } else { 40 });

    let mut points = Vec::new();
    for &n in &sizes {
        let secret: String = pems[..n].concat();
        let bytes = secret.as_bytes();
        // Calibrate: iterations per sample so one sample lasts sample_time.
        let one = Instant::now();
        run_once(bytes, &roots, &path, policy, now);
        let iters = (sample_time.as_secs_f64() / one.elapsed().as_secs_f64()).ceil() as usize;
        let iters = iters.clamp(1, 10_000);
        let (mut p, mut a, mut h) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..samples {
            let (mut tp, mut ta, mut th) = (0.0, 0.0, 0.0);
            for _ in 0..iters {
                let t0 = Instant::now();
                let parsed = parse_file(black_box(bytes)).expect("parse");
                let t1 = Instant::now();
                let custom = [(&path, &parsed.certs[..])];
                let bundle = assemble(&roots, custom, policy, now);
                let t2 = Instant::now();
                let files = bundle.hashed_files();
                let t3 = Instant::now();
                assert_eq!(bundle.entries.len(), roots.len() + n);
                black_box(files);
                tp += (t1 - t0).as_secs_f64();
                ta += (t2 - t1).as_secs_f64();
                th += (t3 - t2).as_secs_f64();
            }
            let k = iters as f64 * 1e-6;
            p.push(tp / k);
            a.push(ta / k);
            h.push(th / k);
        }
        points.push(Point {
            certs: n,
            bytes: bytes.len(),
            parse: median(&mut p),
            assemble: median(&mut a),
            hashed: median(&mut h),
        });
    }

    // Least-squares fit of total time against the number of certificates.
    let xs: Vec<f64> = points.iter().map(|p| p.certs as f64).collect();
    let ys: Vec<f64> = points
        .iter()
        .map(|p| p.parse + p.assemble + p.hashed)
        .collect();
    let nf = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / nf, ys.iter().sum::<f64>() / nf);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let ss_res: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (y - (intercept + slope * x)).powi(2))
        .sum();
    let ss_tot: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    let r2 = 1.0 - ss_res / ss_tot;

    println!(
        "pipeline: one Secret file + {} embedded roots ({} key), median of {samples} samples",
        roots.len(),
        if key_path.is_some() {
            "RSA 2048"
        } else {
            "ECDSA P-256"
        }
    );
    println!(
        "{:>6} {:>9} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "certs", "bytes", "parse", "assemble", "hashed", "total", "per cert"
    );
    for p in &points {
        let t = p.parse + p.assemble + p.hashed;
        println!(
            "{:>6} {:>9} {:>8.0}µs {:>8.0}µs {:>8.0}µs {:>8.0}µs {:>10.1}µs",
            p.certs,
            p.bytes,
            p.parse,
            p.assemble,
            p.hashed,
            t,
            t / p.certs as f64
        );
    }
    println!(
        "fit: {slope:.2} µs per certificate + {intercept:.0} µs fixed (the roots), R² = {r2:.5}"
    );

    if let Some(out) = std::env::var_os("TI_BENCH_JSON") {
        let pts: Vec<serde_json::Value> = points
            .iter()
            .map(|p| {
                serde_json::json!({
                    "certs": p.certs, "bytes": p.bytes, "parse_us": p.parse,
                    "assemble_us": p.assemble, "hashed_names_us": p.hashed,
                    "total_us": p.parse + p.assemble + p.hashed,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "roots": roots.len(), "points": pts, "per_cert_us": slope,
            "intercept_us": intercept, "r2": r2, "samples": samples,
        });
        std::fs::write(Path::new(&out), doc.to_string()).expect("write TI_BENCH_JSON");
    }
}

/// One untimed pass, to calibrate the iteration count.
fn run_once(
    bytes: &[u8],
    roots: &[trust_injector::cert::Certificate],
    path: &PathBuf,
    policy: Policy,
    now: i64,
) {
    let parsed = parse_file(bytes).expect("parse");
    let bundle = assemble(roots, [(path, &parsed.certs[..])], policy, now);
    black_box(bundle.hashed_files().len());
}
