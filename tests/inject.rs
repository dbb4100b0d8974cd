//! `trust-injector inject`: golden outputs on realistic manifests, byte-for-byte
//! pass-through of untouched documents, idempotence (`inject | inject` = `inject`),
//! reversibility (`inject | inject --remove` = the input), skips, conflicts, bad input
//! (nothing on stdout), and every mutated output validated by `kubernetes-validate
//! --strict` against every Kubernetes version from 1.29 to the newest it knows.
//!
//! Golden files: `tests/fixtures/inject/golden/`. After a deliberate change of the
//! injected pod, regenerate them with `TRUST_INJECTOR_UPDATE_GOLDEN=1 cargo test --test
//! inject` and review the diff.

mod common;

use common::tools::{self, Out};
use common::trust_injector;
use common::yaml::docs;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inject")
        .join(name)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `trust-injector inject ARGS...` with stdin closed.
fn inject(args: &[&str]) -> Out {
    let mut cmd = trust_injector();
    cmd.arg("inject").args(args);
    tools::run(&mut cmd, T)
}

fn inject_ok(args: &[&str]) -> String {
    let out = inject(args);
    assert!(out.ok(), "inject {args:?} failed:\n{}", out.text());
    out.stdout
}

/// `trust-injector inject ARGS... -` fed `input` on stdin, as Helm runs a post-renderer.
fn inject_stdin(args: &[&str], input: &str) -> Out {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), input).unwrap();
    let out = trust_injector()
        .arg("inject")
        .args(args)
        .arg("-")
        .stdin(Stdio::from(std::fs::File::open(tmp.path()).unwrap()))
        .output()
        .unwrap();
    Out {
        status: out.status,
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn inject_stdin_ok(args: &[&str], input: &str) -> String {
    let out = inject_stdin(args, input);
    assert!(out.ok(), "inject {args:?} - failed:\n{}", out.text());
    out.stdout
}

/// Compares `actual` with the golden file `name`, or rewrites it when asked.
fn golden(name: &str, actual: &str) {
    let path = fixture("golden").join(name);
    if std::env::var_os("TRUST_INJECTOR_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = read(&path);
    assert!(
        want == actual,
        "{} differs from the output (TRUST_INJECTOR_UPDATE_GOLDEN=1 regenerates it):\n{}",
        path.display(),
        first_difference(&want, actual)
    );
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n- {x}\n+ {y}", i + 1);
        }
    }
    format!("lengths {} vs {}", a.len(), b.len())
}

/// Validates the file argv[1] with `--strict` against every Kubernetes version the
/// installed kubernetes-validate knows from 1.29 (native sidecars) up to the newest, in
/// one process (a CLI call per version would start Python each time). The items of a
/// `kind: List` are validated one by one: it has no schema of its own. Prints the
/// versions checked on its last line; exits 1 on any failure (printed before).
const VALIDATE_ALL: &str = r#"
import sys
from kubernetes_validate.utils import Version, all_versions, resources_from_file, validate_resource
versions = sorted({v for v in all_versions() if Version(v) >= Version("1.29.0")}, key=Version)
resources = []
for r in resources_from_file(sys.argv[1]):
    resources += r["items"] if r.get("kind") == "List" else [r]
rc = 0
for v in versions:
    for r in resources:
        rc |= validate_resource(resource=r, filename=sys.argv[1], version=v, strict=True, quiet=True, no_warn=False)
print("versions: " + " ".join(versions))
sys.exit(1 if rc else 0)
"#;

/// `kubernetes-validate --strict` for every version from 1.29 to the newest it knows.
fn validate(name: &str, text: &str) {
    let kv = tools::require("kubernetes-validate");
    let python = kv.parent().unwrap().join("python");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, text).unwrap();
    let out = tools::run(
        tools::clean_command(python.to_str().unwrap())
            .args(["-c", VALIDATE_ALL])
            .arg(&file),
        T,
    );
    assert!(
        out.ok(),
        "{name}: kubernetes-validate --strict (1.29 to the newest):\n{}",
        out.text()
    );
    let last = out.stdout.lines().last().unwrap_or_default();
    let versions: Vec<&str> = last.split_whitespace().skip(1).collect();
    assert!(
        versions.first() == Some(&"1.29.0") && versions.len() > 1,
        "{name}: validated only {versions:?}"
    );
}

/// The document texts of a stream, split on `---` lines (fixtures have no tricks).
fn raw_docs(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" && !out.last().unwrap().is_empty() {
            out.push(String::new());
        }
        out.last_mut().unwrap().push_str(line);
    }
    out
}

fn kind_name(doc: &Value) -> String {
    format!(
        "{}/{}",
        doc["kind"].as_str().unwrap_or(""),
        doc["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// The pod spec of a workload document.
fn pod_spec(doc: &Value) -> &Value {
    match doc["kind"].as_str().unwrap() {
        "Pod" => &doc["spec"],
        "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => &doc["spec"]["template"]["spec"],
    }
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|l| l.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn helm_stream_golden_passthrough_idempotent_reversible_and_valid() {
    let input = read(&fixture("helm-stream.yaml"));
    let out = inject_stdin(&[], &input);
    assert!(out.ok(), "{}", out.text());
    golden("helm-stream.yaml", &out.stdout);
    validate("helm-stream", &out.stdout);
    // The hook, the hostNetwork DaemonSet and the opted-out Deployment are named on stderr.
    for skipped in [
        "Pod/orders-test-connection: a Helm hook",
        "DaemonSet/orders-node-agent: hostNetwork",
        "Deployment/orders-legacy-worker: opted out",
    ] {
        assert!(
            out.stderr.contains(skipped),
            "stderr names {skipped}:\n{}",
            out.stderr
        );
    }

    // Untouched documents come back byte for byte, `# Source:` comments included.
    let (before, after) = (raw_docs(&input), raw_docs(&out.stdout));
    assert_eq!(before.len(), after.len());
    let mut changed = Vec::new();
    for (b, a) in before.iter().zip(&after) {
        let doc = &docs(b)[0];
        if b != a {
            changed.push(kind_name(doc));
            // Helm 4's annotation stays on every document we change, and the head too.
            assert!(
                a.contains("postrenderer.helm.sh/postrender-filename"),
                "{a}"
            );
            assert!(a.starts_with(b.lines().take(2).collect::<Vec<_>>().join("\n").as_str()));
        }
    }
    assert_eq!(
        changed,
        [
            "Deployment/orders",
            "StatefulSet/orders-cache",
            "CronJob/orders-reconcile"
        ]
    );

    // Both application containers get the trust; ours come before the chart's own
    // init container, as the Component puts them, and the native sidecar follows the
    // roots copy.
    let deploy = docs(&out.stdout)
        .into_iter()
        .find(|d| kind_name(d) == "Deployment/orders")
        .unwrap();
    let spec = pod_spec(&deploy);
    assert_eq!(
        names(&spec["initContainers"]),
        [
            "trust-injector-install",
            "copy-gateway-roots",
            "trust-injector",
            "migrate"
        ]
    );
    assert_eq!(
        spec["initContainers"][1]["image"],
        "registry.example.com/shop/orders:2.3.0"
    );
    assert_eq!(
        spec["volumes"][4]["configMap"]["defaultMode"], 0o440,
        "0440 is octal, as Kubernetes reads it"
    );
    for c in spec["containers"].as_array().unwrap() {
        let env = names(&c["env"]);
        assert!(env.ends_with(&["SSL_CERT_FILE", "SSL_CERT_DIR"]), "{env:?}");
        assert_eq!(names(&c["volumeMounts"]).last(), Some(&"trust"));
    }

    // inject | inject = inject
    assert_eq!(inject_stdin_ok(&[], &out.stdout), out.stdout);
    // inject | inject --remove = the input (parsed), untouched documents byte for byte
    let removed = inject_stdin_ok(&["--remove"], &out.stdout);
    assert_eq!(docs(&removed), docs(&input));
    for (b, r) in before.iter().zip(raw_docs(&removed)) {
        if !changed.contains(&kind_name(&docs(b)[0])) {
            assert_eq!(*b, r);
        }
    }
}

#[test]
fn portal_yaml_list_json_and_directories() {
    let portal =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s/component-example/portal-gateway.yaml");
    let out = inject_ok(&[portal.to_str().unwrap()]);
    golden("portal-gateway.yaml", &out);
    validate("portal", &out);
    assert_eq!(inject_stdin_ok(&[], &out), out);
    assert_eq!(
        docs(&inject_stdin_ok(&["--remove"], &out)),
        docs(&read(&portal))
    );

    // A List: its items are mutated, the annotations of the template apply.
    let list = inject_ok(&[fixture("list.yaml").to_str().unwrap()]);
    golden("list.yaml", &list);
    validate("list", &list);
    let d = &docs(&list)[0]["items"][0];
    assert_eq!(
        pod_spec(d)["volumes"][0]["secret"]["secretName"],
        "billing-ca"
    );
    assert!(pod_spec(d)["initContainers"][2]["args"]
        .as_array()
        .unwrap()
        .contains(&"--include=*.crt".into()));
    assert_eq!(inject_stdin_ok(&[], &list), list);

    // JSON in, JSON out; only the container the annotation names gets the trust.
    let json = inject_ok(&[fixture("job.json").to_str().unwrap()]);
    golden("job.json", &json);
    let v: Value = serde_json::from_str(&json).expect("JSON out");
    validate("job", &json);
    assert!(pod_spec(&v)["containers"][1].get("env").is_none());
    let again = inject_ok(&["--remove", fixture("job.json").to_str().unwrap()]);
    assert_eq!(
        again,
        read(&fixture("job.json")),
        "nothing to remove: byte for byte"
    );

    // A directory is read recursively, in name order; -o writes the same bytes.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::copy(fixture("list.yaml"), dir.path().join("sub/b.yml")).unwrap();
    std::fs::copy(&portal, dir.path().join("a.yaml")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
    let outfile = dir.path().join("out/all.yaml");
    std::fs::create_dir_all(outfile.parent().unwrap()).unwrap();
    let both = inject_ok(&[dir.path().to_str().unwrap()]);
    assert_eq!(both, format!("{out}---\n{list}"));
    assert_eq!(
        inject_ok(&[
            "-o",
            outfile.to_str().unwrap(),
            dir.path().to_str().unwrap()
        ]),
        ""
    );
    assert_eq!(read(&outfile), both);
}

#[test]
fn classic_mode_and_option_changes_replace_the_earlier_injection() {
    // Without the CronJob: a classic sidecar would keep its Jobs from completing.
    let all = read(&fixture("helm-stream.yaml"));
    let input: String = raw_docs(&all)
        .into_iter()
        .filter(|d| !d.contains("kind: CronJob"))
        .collect();
    let classic = inject_stdin_ok(&["--mode", "classic", "--secret", "shop-ca"], &input);
    validate("classic", &classic);
    let d = docs(&classic)
        .into_iter()
        .find(|d| kind_name(d) == "Deployment/orders")
        .unwrap();
    assert_eq!(
        names(&pod_spec(&d)["initContainers"]),
        [
            "trust-injector-install",
            "copy-gateway-roots",
            "trust-injector-init",
            "migrate"
        ]
    );
    assert_eq!(
        names(&pod_spec(&d)["containers"]),
        ["orders", "metrics-proxy", "trust-injector"]
    );

    // Native over classic, with another image and only one container (--container
    // applies to every workload, so only the one that has it): the same as a fresh
    // injection with those options.
    let only = |text: &str| -> String {
        raw_docs(text)
            .into_iter()
            .filter(|d| kind_name(&docs(d)[0]) == "Deployment/orders")
            .collect()
    };
    let (classic, input) = (only(&classic), only(&input));
    let args = [
        "--image",
        "registry.example.com/trust-injector:9.9",
        "--container",
        "orders",
    ];
    let over = inject_stdin_ok(&args, &classic);
    let fresh = inject_stdin_ok(&args, &input);
    assert_eq!(docs(&over), docs(&fresh));
    let d = docs(&fresh)
        .into_iter()
        .find(|d| kind_name(d) == "Deployment/orders")
        .unwrap();
    assert!(names(&pod_spec(&d)["containers"][1]["env"]).is_empty());
    assert_eq!(docs(&inject_stdin_ok(&["--remove"], &over)), docs(&input));

    // Classic on a CronJob's pod would never let the Job complete: an error, not a pod.
    let cron: String = raw_docs(&all)
        .into_iter()
        .filter(|d| d.contains("kind: CronJob"))
        .collect();
    let out = inject_stdin(&["--mode", "classic"], &cron);
    assert_eq!(out.code(), Some(1), "{}", out.text());
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("CronJob/orders-reconcile") && out.stderr.contains("completing"),
        "{}",
        out.stderr
    );
}

/// Issue 27 item 2: `--openshift` (or its variable) leaves user and group to
/// OpenShift's restricted-v2 on every container we add; everything still validates.
#[test]
fn openshift_mode_by_flag_or_variable_sets_no_fixed_uid() {
    let input = read(&fixture("helm-stream.yaml"));
    let by_flag = inject_stdin_ok(&["--openshift"], &input);
    validate("openshift", &by_flag);
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), &input).unwrap();
    let by_env = trust_injector()
        .args(["inject", "-"])
        .env("TRUST_INJECTOR_INJECT_OPENSHIFT", "true")
        .stdin(Stdio::from(std::fs::File::open(tmp.path()).unwrap()))
        .output()
        .unwrap();
    assert_eq!(
        docs(&String::from_utf8(by_env.stdout).unwrap()),
        docs(&by_flag)
    );
    let ours = [
        "copy-gateway-roots",
        "trust-injector",
        "trust-injector-init",
    ];
    let mut seen = 0;
    for d in docs(&by_flag) {
        if !matches!(
            d["kind"].as_str(),
            Some("Deployment" | "StatefulSet" | "Pod")
        ) {
            continue;
        }
        for c in pod_spec(&d)["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if ours.contains(&c["name"].as_str().unwrap_or("")) {
                let sc = &c["securityContext"];
                assert!(
                    sc.get("runAsUser").is_none() && sc["runAsNonRoot"] == true,
                    "{sc}"
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 2, "no injected container checked");
}

#[test]
fn conflicting_trust_settings_are_refused_unless_forced() {
    let path = fixture("conflict.yaml");
    let out = inject(&[path.to_str().unwrap()]);
    assert_eq!(out.code(), Some(1), "{}", out.text());
    assert!(out.stdout.is_empty(), "nothing on stdout: {}", out.stdout);
    for needle in [
        "conflict.yaml",
        "document 2",
        "line 9",
        "Deployment/reports",
        "\"reports\"",
        "SSL_CERT_FILE",
        "--force",
    ] {
        assert!(
            out.stderr.contains(needle),
            "stderr names {needle}:\n{}",
            out.stderr
        );
    }
    let forced = inject_ok(&["--force", path.to_str().unwrap()]);
    golden("conflict-forced.yaml", &forced);
    validate("forced", &forced);
    let forced_docs = docs(&forced);
    let env = &pod_spec(&forced_docs[1])["containers"][0]["env"];
    assert_eq!(names(env), ["LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR"]);
    assert_eq!(inject_stdin_ok(&["--force"], &forced), forced);
    // --remove puts the workload's own SSL_CERT_FILE back where it was.
    assert_eq!(
        docs(&inject_stdin_ok(&["--remove"], &forced)),
        docs(&read(&path))
    );
}

#[test]
fn bad_input_names_file_document_and_line_and_writes_nothing() {
    let cases: &[(&str, &[&str])] = &[
        (
            "bad.yaml",
            &["bad.yaml", "document 2", "line 17", "invalid YAML"],
        ),
        (
            "old-api.yaml",
            &[
                "old-api.yaml",
                "document 1",
                "Deployment/ancient",
                "extensions/v1beta1",
            ],
        ),
    ];
    for (name, needles) in cases {
        let good = fixture("helm-stream.yaml");
        let tmp = tempfile::tempdir().unwrap();
        let outfile = tmp.path().join("out.yaml");
        let out = inject(&[
            good.to_str().unwrap(),
            fixture(name).to_str().unwrap(),
            "-o",
            outfile.to_str().unwrap(),
        ]);
        assert_eq!(out.code(), Some(1), "{}", out.text());
        assert!(out.stdout.is_empty());
        assert!(!outfile.exists(), "-o is not written on error");
        for n in *needles {
            assert!(
                out.stderr.contains(n),
                "{name}: stderr names {n}:\n{}",
                out.stderr
            );
        }
        let out = inject(&[fixture(name).to_str().unwrap()]);
        assert_eq!((out.code(), out.stdout.as_str()), (Some(1), ""));
    }
    // Bad JSON, a missing file, a workload without a pod template.
    let dir = tempfile::tempdir().unwrap();
    let bad_json = dir.path().join("x.json");
    std::fs::write(&bad_json, "{\n  \"kind\": \"Pod\",\n  oops\n}\n").unwrap();
    let out = inject(&[bad_json.to_str().unwrap()]);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains("x.json") && out.stderr.contains("line 3"),
        "{}",
        out.stderr
    );
    let out = inject(&["/nonexistent/deploy.yaml"]);
    assert_eq!(out.code(), Some(2));
    assert!(
        out.stderr.contains("/nonexistent/deploy.yaml"),
        "{}",
        out.stderr
    );
    let out = inject_stdin(
        &[],
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: empty\nspec: {}\n",
    );
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains("-: document 1") && out.stderr.contains("no pod template"),
        "{}",
        out.stderr
    );
    let out = inject(&["--mode", "sidecar"]);
    assert_eq!(out.code(), Some(2), "{}", out.text());
}

#[test]
fn an_older_injection_is_replaced_and_removed_by_its_marker() {
    let old = fixture("injected-0.0.9.yaml");
    let out = inject_ok(&[old.to_str().unwrap()]);
    assert!(
        !out.contains("trust-injector:0.0.9") && !out.contains(r#"\"version\":\"0.0.9\""#),
        "{out}"
    );
    let golden_portal = read(&fixture("golden/portal-gateway.yaml"));
    assert_eq!(docs(&out), docs(&golden_portal));
    let portal =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s/component-example/portal-gateway.yaml");
    assert_eq!(
        docs(&inject_ok(&["--remove", old.to_str().unwrap()])),
        docs(&read(&portal))
    );
}

/// The Helm 4 plugin: a postrenderer/v1 subprocess plugin whose command, fed a chart's
/// rendering on stdin as Helm does, gives what `inject -` gives.
#[test]
fn helm4_plugin_runs_inject_on_stdin() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm-plugin");
    let plugin = &docs(&read(&dir.join("plugin.yaml")))[0];
    assert_eq!(plugin["apiVersion"], "v1");
    assert_eq!(plugin["type"], "postrenderer/v1");
    assert_eq!(plugin["runtime"], "subprocess");
    assert_eq!(plugin["name"], "trust-injector");
    assert_eq!(plugin["version"], env!("CARGO_PKG_VERSION"));
    let cmd = &plugin["runtimeConfig"]["platformCommand"][0];
    assert_eq!(cmd["command"], "trust-injector");
    let args: Vec<&str> = cmd["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args.first(), Some(&"inject"));
    let input = read(&fixture("helm-stream.yaml"));
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), &input).unwrap();
    let out = trust_injector()
        .args(&args)
        .stdin(Stdio::from(std::fs::File::open(tmp.path()).unwrap()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        read(&fixture("golden/helm-stream.yaml"))
    );
}

/// A CRD nests its schema two levels per `properties`, deeper than a YAML parser's
/// default budget: it passes through untouched; a workload nested that deep is still
/// mutated and written back (no stack overflow); an alias bomb is refused.
#[test]
fn deep_crds_pass_and_alias_bombs_are_refused() {
    let mut crd = String::from("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: deep.example.com\nspec:\n  group: example.com\n  names: {kind: Deep, plural: deeps}\n  scope: Namespaced\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n");
    let mut indent = 10;
    for i in 0..120 {
        let pad = " ".repeat(indent);
        crd.push_str(&format!(
            "{pad}type: object\n{pad}properties:\n{pad}  f{i}:\n"
        ));
        indent += 4;
    }
    crd.push_str(&format!("{}type: string\n", " ".repeat(indent)));
    assert_eq!(inject_stdin_ok(&[], &crd), crd);

    let mut deep = String::from("apiVersion: v1\nkind: Pod\nmetadata:\n  name: deep\n  annotations:\n    x: y\nspec:\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n  x-deep: ");
    // 490 levels of block mappings, one space of indentation each.
    deep.push('\n');
    for level in 0..490 {
        deep.push_str(&format!("{}k{level}:\n", " ".repeat(level + 4)));
    }
    deep.push_str(&format!("{}leaf: 1\n", " ".repeat(494)));
    let out = inject_stdin_ok(&[], &deep);
    assert!(out.contains("copy-gateway-roots"));

    let mut bomb = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n  a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
    let mut prev = 'a';
    for c in 'b'..='j' {
        bomb.push_str(&format!("  {c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        prev = c;
    }
    let out = inject_stdin(&[], &bomb);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (Some(1), ""),
        "{}",
        out.text()
    );
    assert!(out.stderr.contains("budget"), "{}", out.stderr);
}

/// Issue 27 item 1, as the two injected init containers run it: `roots --install`
/// copies the real binary, and that copy, run with another root (an image's
/// filesystem), finds each distribution's bundle, or writes nothing for scratch.
#[test]
fn roots_installs_itself_and_finds_every_layout() {
    let bin = tempfile::tempdir().unwrap();
    let out = trust_injector()
        .args(["roots", "--install"])
        .arg(bin.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let copy = bin.path().join("trust-injector");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o555, "executable by any UID");
    for (distro, layout) in [
        (
            "Debian, Ubuntu, distroless, Wolfi",
            "etc/ssl/certs/ca-certificates.crt",
        ),
        (
            "RHEL, UBI, Fedora",
            "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        ),
        ("older RHEL", "etc/pki/tls/certs/ca-bundle.crt"),
        ("SUSE", "var/lib/ca-certificates/ca-bundle.pem"),
        ("Alpine", "etc/ssl/cert.pem"),
        ("scratch", ""),
    ] {
        let image = tempfile::tempdir().unwrap();
        let base = tempfile::tempdir().unwrap();
        // `roots` copies bytes; the sidecar is what parses them.
        let pem = format!("roots of {distro}\n");
        if !layout.is_empty() {
            let at = image.path().join(layout);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::fs::write(&at, &pem).unwrap();
        }
        let run = std::process::Command::new(&copy)
            .args(["roots", "--root"])
            .arg(image.path())
            .arg(format!("--out={}", base.path().display()))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&run.stdout).to_string();
        assert!(run.status.success(), "{distro}: {run:?}");
        let written = base.path().join("ca-certificates.crt");
        if layout.is_empty() {
            assert!(!written.exists(), "{distro}");
            assert!(said.contains("embedded Mozilla roots"), "{said}");
        } else {
            assert_eq!(read(&written), pem, "{distro}");
            assert!(said.contains(layout), "{distro}: {said}");
        }
    }
}

/// Issue 27 item 5: the sidecar's injected exec probes ask it over loopback (which no
/// mesh redirects) and pass exactly when its /readyz and /healthz answer 200; a
/// sidecar that is gone fails them with the reason the kubelet shows in events.
#[test]
fn exec_probes_ask_the_sidecar_over_loopback() {
    let probe = |which: &str, port: u16| {
        let mut cmd = trust_injector();
        cmd.args(["probe", which, &format!("--port={port}")]);
        tools::run(&mut cmd, T)
    };
    let f = common::daemon::Fixture::new();
    let mut d = f.daemon().base("embedded").start();
    d.wait_ready();
    for which in ["ready", "live"] {
        let out = probe(which, d.port);
        assert!(out.ok(), "probe {which}: {}", out.text());
    }
    d.stop();
    let out = probe("ready", d.port);
    assert_eq!(out.code(), Some(1), "{}", out.text());
    assert!(
        out.stderr
            .contains(&format!("/readyz on 127.0.0.1:{}", d.port)),
        "{}",
        out.stderr
    );
}

/// Issue 27 items 3 and 6 through the command: a meshed Deployment gets trust in its
/// application container only, the proxy is named on stderr and in the annotation; a
/// Windows Pod passes through byte for byte with the reason; the output validates.
#[test]
fn proxies_and_windows_pods_are_named_with_the_reason() {
    let input = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
      - name: istio-proxy
        image: docker.io/istio/proxyv2:1.24.0
      - name: shop
        image: registry.example.com/shop:1
---
apiVersion: v1
kind: Pod
metadata:
  name: win
spec:
  os: {name: windows}
  containers:
  - name: iis
    image: mcr.microsoft.com/windows/servercore/iis
"#;
    let out = inject_stdin(&[], input);
    assert!(out.ok(), "{}", out.text());
    validate("meshed", &out.stdout);
    assert!(
        out.stderr.contains(
            "Deployment/shop: container istio-proxy left without trust: a known mesh or infrastructure proxy"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("skipped Pod/win: a Windows pod"),
        "{}",
        out.stderr
    );
    let d = docs(&out.stdout);
    let spec = pod_spec(&d[0]);
    assert!(spec["containers"][0].get("env").is_none(), "{spec}");
    assert_eq!(spec["containers"][1]["env"][0]["name"], "SSL_CERT_FILE");
    assert_eq!(
        spec["initContainers"][1]["image"],
        "registry.example.com/shop:1"
    );
    let skipped = &d[0]["spec"]["template"]["metadata"]["annotations"]["trust-injector.io/skipped"];
    assert!(
        skipped.as_str().unwrap().starts_with("istio-proxy: "),
        "{skipped}"
    );
    assert!(
        out.stdout.ends_with(&raw_docs(input)[1]),
        "Windows pod not byte for byte"
    );
}

/// Issue 27: the complete examples users copy, `k8s/gateway` and `k8s/classic`, are
/// `inject` (native, classic) of the one plain hardened gateway, below their own
/// leading comment, so they cannot drift from what `inject`, the webhook and the
/// Component give. `TRUST_INJECTOR_UPDATE_GOLDEN=1` rewrites them (the comment kept).
#[test]
fn complete_examples_are_inject_of_the_plain_gateway() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plain = root.join("k8s/gateway/plain-gateway.yaml");
    let plain = plain.to_str().unwrap();
    for (example, args) in [
        ("k8s/gateway/gateway.yaml", &[][..]),
        ("k8s/classic/gateway.yaml", &["--mode", "classic"][..]),
    ] {
        let out = inject_ok(&[args, &[plain]].concat());
        let body = &out[out.find("---\n").expect("plain-gateway.yaml has a ---")..];
        let path = root.join(example);
        let text = read(&path);
        let (header, have) = text.split_at(text.find("---\n").unwrap_or(0));
        assert!(header.starts_with("# GENERATED"), "{example}: no header");
        if std::env::var_os("TRUST_INJECTOR_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, format!("{header}{body}")).unwrap();
            continue;
        }
        assert!(
            have == body,
            "{example} is not `inject {args:?} k8s/gateway/plain-gateway.yaml` \
             (TRUST_INJECTOR_UPDATE_GOLDEN=1 regenerates it):\n{}",
            first_difference(have, body)
        );
        validate(example.replace('/', "_").as_str(), &text);
    }
}

/// A pod that required node affinity sends only to Windows nodes (every term rules
/// Linux out) is skipped byte for byte with the Windows reason; one whose affinity has
/// a term that allows Linux is injected and validates.
#[test]
fn windows_by_node_affinity_is_skipped_a_linux_term_is_not() {
    let workload = |name: &str, terms: &str| {
        format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
{terms}
      containers:
      - name: app
        image: registry.example.com/app:1
"#
        )
    };
    let os = |op: &str, v: &str| {
        format!(
            "            - matchExpressions:\n              - {{key: kubernetes.io/os, operator: {op}, values: [{v}]}}\n"
        )
    };
    let win_in = workload("win-in", &os("In", "windows"));
    let win_notin = workload("win-notin", &(os("NotIn", "linux") + &os("In", "windows")));
    let either = workload("either", &(os("In", "windows") + &os("In", "linux")));
    let input = format!("{win_in}---\n{win_notin}---\n{either}");
    let out = inject_stdin(&[], &input);
    assert!(out.ok(), "{}", out.text());
    for name in ["win-in", "win-notin"] {
        let line = format!("skipped Deployment/{name}: a Windows pod");
        assert!(out.stderr.contains(&line), "{}", out.stderr);
    }
    assert!(
        out.stdout.starts_with(&format!("{win_in}---\n{win_notin}")),
        "Windows-only workloads not passed through byte for byte:\n{}",
        out.stdout
    );
    let d = docs(&out.stdout);
    assert_eq!(
        pod_spec(&d[2])["containers"][0]["env"][0]["name"],
        "SSL_CERT_FILE"
    );
    validate("affinity", &out.stdout);
}

/// Issue 27 item 4 through the command: `trust-injector.io/runtimes` gives each named
/// runtime its variable, appends to the container's own JAVA_TOOL_OPTIONS, makes the
/// sidecar publish the PKCS#12 store; the pod validates, `--remove` gives back the
/// input's pod exactly, and an unknown runtime is refused naming the annotation.
#[test]
fn runtimes_annotation_round_trips_and_validates() {
    let input = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: polyglot
spec:
  selector:
    matchLabels: {app: polyglot}
  template:
    metadata:
      labels: {app: polyglot}
      annotations:
        trust-injector.io/runtimes: node,python,curl,java
    spec:
      containers:
      - name: app
        image: registry.example.com/app:1
        env:
        - name: JAVA_TOOL_OPTIONS
          value: -Xmx256m
        - name: MODE
          value: prod
"#;
    let out = inject_stdin_ok(&[], input);
    validate("runtimes", &out);
    let d = docs(&out);
    let spec = pod_spec(&d[0]);
    let env = &spec["containers"][0]["env"];
    let value = |name: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {env}"))["value"]
            .clone()
    };
    for name in [
        "NODE_EXTRA_CA_CERTS",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ] {
        assert_eq!(value(name), "/var/run/trust/ca-certificates.crt");
    }
    assert_eq!(
        value("JAVA_TOOL_OPTIONS"),
        "-Xmx256m -Djavax.net.ssl.trustStore=/var/run/trust/truststore.p12 \
         -Djavax.net.ssl.trustStoreType=PKCS12"
    );
    let args = &spec["initContainers"][2]["args"];
    assert!(
        args.as_array().unwrap().contains(&"--pkcs12".into()),
        "{args}"
    );
    let removed = inject_stdin_ok(&["--remove"], &out);
    assert_eq!(docs(&removed), docs(input));

    let bad = input.replace("node,python", "node,ruby");
    let out = inject_stdin(&[], &bad);
    assert_eq!(out.code(), Some(1), "{}", out.text());
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("annotation trust-injector.io/runtimes: \"ruby\""),
        "{}",
        out.stderr
    );
}
