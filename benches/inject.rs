//! Throughput of `trust-injector inject` in process: documents per second on Helm-style
//! streams of thousands of documents (a third Deployments, which are parsed, mutated
//! and re-serialised; the rest ConfigMaps and Services, which are parsed and passed
//! through byte for byte), and a linear fit showing the cost grows linearly with the
//! stream (no quadratic re-scanning of the text).
//!
//! `cargo bench --bench inject`. `harness = false` with its own timing loop, for the
//! reasons benches/pipeline.rs gives. `TI_BENCH_QUICK` = fewer samples. Besides wall
//! time it reports this thread's CPU time, which a machine shared with other builds
//! disturbs far less; the fit uses CPU time.

use std::hint::black_box;
use std::time::{Duration, Instant};
use trust_injector::inject::manifest::{process, Action, Input};
use trust_injector::inject::InjectOptions;

/// One chart's worth of documents, the way Helm prints them.
fn stream(docs: usize) -> String {
    let mut s = String::new();
    for i in 0..docs {
        let name = format!("app-{i}");
        match i % 3 {
            0 => s.push_str(&format!(
                "---\n# Source: chart/templates/deployment-{i}.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels:\n    app.kubernetes.io/name: {name}\n    helm.sh/chart: chart-1.0.0\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: {name}\n    spec:\n      containers:\n        - name: app\n          image: \"registry.example.com/{name}:1.0\"\n          ports:\n            - name: http\n              containerPort: 8080\n          env:\n            - name: MODE\n              value: \"production\"\n          readinessProbe:\n            httpGet:\n              path: /ready\n              port: http\n"
            )),
            1 => s.push_str(&format!(
                "---\n# Source: chart/templates/configmap-{i}.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  settings.json: |\n    {{\n      \"upstream\": \"https://backend.internal.example\",\n      \"retries\": 3\n    }}\n  LOG_LEVEL: info\n"
            )),
            _ => s.push_str(&format!(
                "---\n# Source: chart/templates/service-{i}.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app.kubernetes.io/name: {name}\n  ports:\n    - name: http\n      port: 80\n      targetPort: http\n"
            )),
        }
    }
    s
}

/// CPU time of this thread, in seconds.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid one we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::var_os("TI_BENCH_QUICK").is_some();
    let samples = if quick { 3 } else { 9 };
    let opts = InjectOptions::default();
    println!(
        "{:>7} {:>9} {:>9} {:>9} {:>12} {:>10}",
        "docs", "KiB", "wall ms", "CPU ms", "docs/CPU-s", "CPU µs/doc"
    );
    let mut points = Vec::new();
    for docs in [500, 1_000, 2_000, 4_000, 8_000] {
        let input = [Input {
            name: "-".into(),
            text: stream(docs),
        }];
        let (mut walls, mut cpus) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            let (t, c) = (Instant::now(), thread_cpu());
            let (out, summary) = process(&input, &opts, Action::Inject).expect("inject");
            let (wall, cpu) = (t.elapsed(), thread_cpu() - c);
            assert_eq!(summary.changed, docs.div_ceil(3));
            black_box(out.len());
            walls.push(wall.as_secs_f64());
            cpus.push(cpu);
        }
        let (w, t) = (median(&mut walls), median(&mut cpus));
        println!(
            "{docs:>7} {:>9} {:>9.1} {:>9.1} {:>12.0} {:>10.1}",
            input[0].text.len() / 1024,
            w * 1e3,
            t * 1e3,
            docs as f64 / t,
            t * 1e6 / docs as f64
        );
        points.push((docs as f64, t * 1e6));
        if w > Duration::from_secs(30).as_secs_f64() {
            break;
        }
    }
    // Least squares: time = slope × docs + intercept; R² near 1 means linear growth.
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
    let (mx, my) = (sx / n, sy / n);
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let ss_res: f64 = points
        .iter()
        .map(|p| (p.1 - slope * p.0 - intercept).powi(2))
        .sum();
    let ss_tot: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    println!(
        "fit (CPU): {slope:.1} µs per document + {intercept:.0} µs fixed, R² = {:.5}",
        1.0 - ss_res / ss_tot
    );
}
