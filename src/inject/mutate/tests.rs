use super::*;

fn pod() -> Value {
    json!({
        "metadata": {"labels": {"app": "gw"}},
        "spec": {"containers": [
            {"name": "gw", "image": "example/gw:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "log", "image": "example/log:1"},
        ]},
    })
}

/// The Component's strategic merge puts its init containers and volumes
/// before the workload's own; `inject` must give the same order.
#[test]
fn ours_come_before_the_workloads_own_init_containers_and_volumes() {
    let mut t = pod();
    t["spec"]["initContainers"] = json!([{"name": "setup", "image": "busybox"}]);
    t["spec"]["volumes"] = json!([{"name": "config", "emptyDir": {}}]);
    let orig = t.clone();
    inject_template(&mut t, &InjectOptions::default()).unwrap();
    let inits = names_of(t["spec"]["initContainers"].as_array().unwrap());
    assert_eq!(inits, [INSTALL_INIT, COPY_INIT, SIDECAR, "setup"]);
    let vols = names_of(t["spec"]["volumes"].as_array().unwrap());
    assert_eq!(vols, [VOL_SECRET, VOL_BIN, VOL_BASE, VOL_TRUST, "config"]);
    assert_eq!(remove_template(&mut t), Ok(Outcome::Injected));
    assert_eq!(t, orig);
}

#[test]
fn inject_is_idempotent_and_reversible() {
    let orig = pod();
    let mut t = orig.clone();
    let o = InjectOptions::default();
    assert_eq!(inject_template(&mut t, &o), Ok(Outcome::Injected));
    let once = t.clone();
    assert_eq!(inject_template(&mut t, &o), Ok(Outcome::Unchanged));
    assert_eq!(t, once);
    let inits = names_of(t["spec"]["initContainers"].as_array().unwrap());
    assert_eq!(inits, [INSTALL_INIT, COPY_INIT, SIDECAR]);
    assert_eq!(t["spec"]["initContainers"][1]["image"], "example/gw:1");
    for c in ["gw", "log"] {
        let c = find_container_mut(&mut t["spec"], c).unwrap().clone();
        assert_eq!(
            c["env"].as_array().unwrap().last().unwrap()["name"],
            SSL_CERT_DIR
        );
    }
    assert_eq!(remove_template(&mut t), Ok(Outcome::Injected));
    assert_eq!(t, orig);
}

#[test]
fn other_options_replace_the_earlier_injection() {
    let mut t = pod();
    inject_template(&mut t, &InjectOptions::default()).unwrap();
    let classic = InjectOptions {
        mode: Mode::Classic,
        containers: vec!["gw".into()],
        ..Default::default()
    };
    assert_eq!(inject_template(&mut t, &classic), Ok(Outcome::Injected));
    let mut fresh = pod();
    inject_template(&mut fresh, &classic).unwrap();
    assert_eq!(t, fresh);
    assert!(fresh["spec"]["containers"][1].get("env").is_none());
}

#[test]
fn conflicts_are_refused_unless_forced_and_force_is_undone() {
    let mut orig = pod();
    orig["spec"]["containers"][0]["env"] =
        json!([{"name": "SSL_CERT_FILE", "value": "/x"}, {"name": "A", "value": "1"}]);
    let mut t = orig.clone();
    let err = inject_template(&mut t, &InjectOptions::default()).unwrap_err();
    assert!(matches!(err, InjectError::Conflict { ref container, .. } if container == "gw"));
    // What a webhook user (no --force there) can really do.
    let msg = err.to_string();
    for part in [
        "env SSL_CERT_FILE",
        ANN_CONTAINERS,
        "trust-injector.io/inject: \"false\"",
    ] {
        assert!(msg.contains(part), "{msg}");
    }
    assert!(!msg.contains("or use --force"), "{msg}");
    assert_eq!(t, orig);
    let force = InjectOptions {
        force: true,
        ..Default::default()
    };
    inject_template(&mut t, &force).unwrap();
    assert_eq!(inject_template(&mut t, &force), Ok(Outcome::Unchanged));
    remove_template(&mut t).unwrap();
    assert_eq!(t, orig);
}

#[test]
fn skips_and_annotation_overrides() {
    let mut t = pod();
    t["metadata"]["annotations"] = json!({ANN_INJECT: "false"});
    let o = InjectOptions::default();
    assert_eq!(
        inject_template(&mut t, &o),
        Ok(Outcome::Skipped(SkipReason::OptedOut))
    );
    t["metadata"]["annotations"] = json!({HELM_HOOK: "test"});
    assert_eq!(
        inject_template(&mut t, &o),
        Ok(Outcome::Skipped(SkipReason::HelmHook))
    );
    let mut t = pod();
    t["spec"]["hostNetwork"] = json!(true);
    assert_eq!(
        inject_template(&mut t, &o),
        Ok(Outcome::Skipped(SkipReason::HostNetwork))
    );
    let mut t = pod();
    t["metadata"]["annotations"] =
        json!({ANN_SECRET: "my-ca", ANN_CONTAINERS: "log", ANN_INCLUDE: "*.crt"});
    inject_template(&mut t, &o).unwrap();
    assert_eq!(t["spec"]["volumes"][0]["secret"]["secretName"], "my-ca");
    assert_eq!(t["spec"]["initContainers"][1]["image"], "example/log:1");
    assert!(t["spec"]["initContainers"][2]["args"]
        .as_array()
        .unwrap()
        .contains(&json!("--include=*.crt")));
    t["metadata"]["annotations"][ANN_CONTAINERS] = json!("nope");
    assert_eq!(
        inject_template(&mut t, &o),
        Err(InjectError::UnknownContainer("nope".into()))
    );
}

#[test]
fn names_of_ours_already_taken_and_bad_annotations_are_errors() {
    let o = InjectOptions::default();
    let mut t = pod();
    t["spec"]["volumes"] = json!([{"name": "trust", "emptyDir": {}}]);
    let before = t.clone();
    assert_eq!(
        inject_template(&mut t, &o),
        Err(InjectError::NameTaken {
            kind: "volume",
            name: "trust".into()
        })
    );
    assert_eq!(t, before, "unchanged on error");
    for (name, value) in [
        (ANN_MODE, "sidecar"),
        (ANN_RESOURCES, "[1]"),
        (ANN_SECRET, " "),
    ] {
        let mut t = pod();
        t["metadata"]["annotations"] = json!({name: value});
        let err = inject_template(&mut t, &o).unwrap_err();
        assert!(
            matches!(err, InjectError::BadAnnotation { name: n, .. } if n == name),
            "{err}"
        );
    }
    let mut t = pod();
    t["metadata"]["annotations"] = json!({ANN_STATUS: "{not json"});
    assert!(matches!(
        remove_template(&mut t),
        Err(InjectError::BadStatus(_))
    ));
}

/// Issue 27 item 3: mesh proxies are left out by default and named in the skipped
/// annotation; naming one explicitly still configures it.
#[test]
fn known_proxies_are_left_out_by_default_and_listed() {
    let mut t = pod();
    t["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"name": "istio-proxy", "image": "istio/proxyv2"}));
    let orig = t.clone();
    inject_template(&mut t, &InjectOptions::default()).unwrap();
    let status: Status =
        serde_json::from_str(t["metadata"]["annotations"][ANN_STATUS].as_str().unwrap()).unwrap();
    assert_eq!(status.targets, ["gw", "log"]);
    // The roots come from the first target, not from the proxy's image.
    assert_eq!(t["spec"]["initContainers"][1]["image"], "example/gw:1");
    assert!(t["spec"]["containers"][0].get("env").is_none());
    let skipped = t["metadata"]["annotations"][ANN_SKIPPED].as_str().unwrap();
    assert!(
        skipped.starts_with("istio-proxy: a known mesh"),
        "{skipped}"
    );
    assert_eq!(remove_template(&mut t), Ok(Outcome::Injected));
    assert_eq!(t, orig);
    let mut named = orig.clone();
    named["metadata"]["annotations"] = json!({ANN_CONTAINERS: "istio-proxy"});
    inject_template(&mut named, &InjectOptions::default()).unwrap();
    assert_eq!(
        named["spec"]["containers"][0]["env"][0]["name"],
        SSL_CERT_FILE
    );
    // Only proxies: nothing to configure, skipped with the reason, unchanged.
    let mut only = json!({"spec": {"containers": [{"name": "linkerd-proxy", "image": "l"}]}});
    let before = only.clone();
    assert_eq!(
        inject_template(&mut only, &InjectOptions::default()),
        Ok(Outcome::Skipped(SkipReason::NoTarget))
    );
    assert_eq!(only, before);
}

/// `on-conflict: skip` leaves a container with its own trust as it is and says so;
/// the default (deny) refuses with the remedies; never overwritten silently.
#[test]
fn own_trust_is_skipped_or_denied_as_the_annotation_says() {
    let mut t = pod();
    t["spec"]["containers"][1]["env"] = json!([{"name": "SSL_CERT_DIR", "value": "/mine"}]);
    let denied = inject_template(&mut t.clone(), &InjectOptions::default()).unwrap_err();
    assert!(matches!(denied, InjectError::Conflict { ref container, .. } if container == "log"));
    t["metadata"]["annotations"] = json!({ANN_ON_CONFLICT: "skip"});
    let orig = t.clone();
    inject_template(&mut t, &InjectOptions::default()).unwrap();
    assert_eq!(
        t["spec"]["containers"][1]["env"],
        json!([{"name": "SSL_CERT_DIR", "value": "/mine"}])
    );
    assert_eq!(t["spec"]["containers"][0]["env"][1]["name"], SSL_CERT_FILE);
    let skipped = t["metadata"]["annotations"][ANN_SKIPPED].as_str().unwrap();
    assert_eq!(
        skipped,
        "log: already has env SSL_CERT_DIR (trust-injector.io/on-conflict: skip)"
    );
    assert_eq!(remove_template(&mut t), Ok(Outcome::Injected));
    assert_eq!(t, orig);
    t["metadata"]["annotations"][ANN_ON_CONFLICT] = json!("maybe");
    let bad = inject_template(&mut t, &InjectOptions::default()).unwrap_err();
    assert!(bad.to_string().contains(ANN_ON_CONFLICT), "{bad}");
}

/// `init-containers: "true"` configures the workload's own init containers (after
/// ours, so the bundle is there when they start); `roots-from` picks the roots' image.
#[test]
fn init_containers_and_roots_from_by_annotation() {
    let mut t = pod();
    t["spec"]["initContainers"] = json!([{"name": "migrate", "image": "example/migrate:1"}]);
    t["metadata"]["annotations"] = json!({ANN_INIT_CONTAINERS: "true", ANN_ROOTS_FROM: "log"});
    let orig = t.clone();
    inject_template(&mut t, &InjectOptions::default()).unwrap();
    let inits = t["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(
        names_of(inits),
        [INSTALL_INIT, COPY_INIT, SIDECAR, "migrate"]
    );
    assert_eq!(inits[1]["image"], "example/log:1");
    assert_eq!(inits[3]["env"][0]["name"], SSL_CERT_FILE);
    assert_eq!(inits[3]["volumeMounts"][0]["name"], VOL_TRUST);
    assert_eq!(remove_template(&mut t), Ok(Outcome::Injected));
    assert_eq!(t, orig);
    t["metadata"]["annotations"][ANN_ROOTS_FROM] = json!("nope");
    let e = inject_template(&mut t, &InjectOptions::default()).unwrap_err();
    assert_eq!(e, InjectError::UnknownContainer("nope".into()));
    t["metadata"]["annotations"][ANN_INIT_CONTAINERS] = json!("yes");
    let e = inject_template(&mut t, &InjectOptions::default()).unwrap_err();
    assert!(e.to_string().contains(ANN_INIT_CONTAINERS), "{e}");
}

/// Issue 27 item 6: a Windows pod, by `spec.os.name` or by nodeSelector, is skipped
/// with the reason and left unchanged.
#[test]
fn windows_pods_are_skipped_with_the_reason() {
    for windows in [
        json!({"os": {"name": "windows"}}),
        json!({"nodeSelector": {"kubernetes.io/os": "windows"}}),
        affinity(&[&[("In", &["windows"])]]),
        affinity(&[&[("NotIn", &["linux"])]]),
        affinity(&[
            &[("In", &["windows"])],
            &[("In", &["windows"]), ("NotIn", &["linux"])],
        ]),
        // Another key in the same term does not let Linux back in (ANDed).
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                {"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]},
            ]},
        ]}}}}),
    ] {
        let mut t = pod();
        for (k, v) in windows.as_object().unwrap() {
            t["spec"][k] = v.clone();
        }
        let orig = t.clone();
        let got = inject_template(&mut t, &InjectOptions::default());
        assert_eq!(got, Ok(Outcome::Skipped(SkipReason::Windows)), "{windows}");
        assert_eq!(t, orig);
    }
    assert!(SkipReason::Windows.to_string().contains("Windows"));
}

/// A required node affinity with these terms (each a list of `kubernetes.io/os`
/// expressions as operator and values).
fn affinity(terms: &[&[(&str, &[&str])]]) -> Value {
    let terms: Vec<Value> = terms
        .iter()
        .map(|exprs| {
            let exprs: Vec<Value> = exprs
                .iter()
                .map(|(op, values)| json!({"key": "kubernetes.io/os", "operator": op, "values": values}))
                .collect();
            json!({ "matchExpressions": exprs })
        })
        .collect();
    json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}})
}

/// A pod that may land on a Linux node is injected: one term allowing Linux is
/// enough (terms are ORed), as are a preferred-only affinity and a Linux selector.
#[test]
fn affinity_that_allows_linux_is_injected() {
    let preferred = json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [
            {"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]},
        ]}},
    ]}}});
    for linux in [
        affinity(&[&[("In", &["windows"])], &[("In", &["linux"])]]),
        affinity(&[&[("In", &["linux", "windows"])]]),
        affinity(&[&[("NotIn", &["windows"])]]),
        affinity(&[&[("Exists", &[])]]),
        affinity(&[&[("DoesNotExist", &[])]]),
        affinity(&[]),
        preferred,
        json!({"nodeSelector": {"kubernetes.io/os": "linux"}}),
    ] {
        let mut t = pod();
        for (k, v) in linux.as_object().unwrap() {
            t["spec"][k] = v.clone();
        }
        let got = inject_template(&mut t, &InjectOptions::default());
        assert_eq!(got, Ok(Outcome::Injected), "{linux}");
    }
}

/// A port a container declares is never the sidecar's: the next free one is taken,
/// in the port list, the `--listen` argument and (by name) the probes.
#[test]
fn a_port_in_use_is_never_reused() {
    let mut t = pod();
    t["spec"]["containers"][0]["ports"] = json!([{"containerPort": 9898}, {"containerPort": 9899}]);
    inject_template(&mut t, &InjectOptions::default()).unwrap();
    let sidecar = &t["spec"]["initContainers"][2];
    assert_eq!(sidecar["ports"][0]["containerPort"], 9900);
    let args = sidecar["args"].as_array().unwrap();
    assert!(args.contains(&json!("--listen=0.0.0.0:9900")), "{args:?}");
    let probe = &sidecar["startupProbe"]["exec"]["command"];
    assert_eq!(probe[3], "--port=9900", "{probe}");
    // Re-injection does not count our own port as taken.
    let once = t.clone();
    assert_eq!(
        inject_template(&mut t, &InjectOptions::default()),
        Ok(Outcome::Unchanged)
    );
    assert_eq!(t, once);
    let mut full = pod();
    let ports: Vec<Value> = (9898..9998).map(|p| json!({"containerPort": p})).collect();
    full["spec"]["containers"][1]["ports"] = Value::Array(ports);
    assert_eq!(
        inject_template(&mut full, &InjectOptions::default()),
        Ok(Outcome::Skipped(SkipReason::NoFreePort))
    );
}

/// A marker from another version is reported in its own annotation; this version's
/// is not; removal takes the report away with the injection.
#[test]
fn an_injection_by_another_version_is_marked() {
    let mut t = pod();
    inject_template(&mut t, &InjectOptions::default()).unwrap();
    assert_eq!(mark_outdated(&mut t), Ok(None));
    let ann = &mut t["metadata"]["annotations"];
    let old = ann[ANN_STATUS].as_str().unwrap().replacen(
        &format!("\"version\":\"{}\"", env!("CARGO_PKG_VERSION")),
        "\"version\":\"0.0.1\"",
        1,
    );
    ann[ANN_STATUS] = json!(old);
    assert_eq!(mark_outdated(&mut t), Ok(Some("0.0.1".into())));
    let note = t["metadata"]["annotations"][ANN_OUTDATED].as_str().unwrap();
    assert!(note.contains("injected by trust-injector 0.0.1"), "{note}");
    remove_template(&mut t).unwrap();
    assert_eq!(t, pod());
}

/// Issue 27 item 2: OpenShift mode (option or annotation) sets no fixed user or group
/// on anything we add, and keeps every other restricted setting.
#[test]
fn openshift_mode_sets_no_fixed_uid() {
    let uids = |t: &Value| -> Vec<Value> {
        let s = &t["spec"];
        ["initContainers", "containers"]
            .iter()
            .flat_map(|f| s[*f].as_array().cloned().unwrap_or_default())
            .filter(|c| c.get("securityContext").is_some())
            .map(|c| c["securityContext"].clone())
            .collect()
    };
    for mode in [Mode::Native, Mode::Classic] {
        let o = InjectOptions {
            openshift: true,
            mode,
            ..Default::default()
        };
        let mut t = pod();
        inject_template(&mut t, &o).unwrap();
        let ctxs = uids(&t);
        assert_eq!(ctxs.len(), if mode == Mode::Native { 3 } else { 4 });
        for c in ctxs {
            assert!(
                c.get("runAsUser").is_none() && c.get("runAsGroup").is_none(),
                "{c}"
            );
            assert_eq!(c["runAsNonRoot"], true);
            assert_eq!(c["capabilities"]["drop"], json!(["ALL"]));
            assert_eq!(c["seccompProfile"]["type"], "RuntimeDefault");
        }
    }
    let mut t = pod();
    t["metadata"]["annotations"] = json!({ANN_OPENSHIFT: "true"});
    inject_template(&mut t, &InjectOptions::default()).unwrap();
    assert!(uids(&t).iter().all(|c| c.get("runAsUser").is_none()));
    let mut t = pod();
    t["metadata"]["annotations"] = json!({ANN_OPENSHIFT: "false"});
    let o = InjectOptions {
        openshift: true,
        ..Default::default()
    };
    inject_template(&mut t, &o).unwrap();
    assert!(uids(&t).iter().all(|c| c.get("runAsUser").is_some()));
}

fn with_runtimes(value: &str) -> Value {
    let mut t = pod();
    t["metadata"]["annotations"] = json!({ANN_RUNTIMES: value});
    t
}

fn env_of(t: &Value, container: &str) -> Vec<(String, Value)> {
    let spec = &t["spec"];
    let c = spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == container)
        .unwrap();
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].clone()))
        .collect()
}

#[test]
fn runtimes_get_their_variables_and_java_the_pkcs12_store() {
    let orig = with_runtimes("java, curl,node,python,node");
    let mut t = orig.clone();
    assert_eq!(
        inject_template(&mut t, &InjectOptions::default()),
        Ok(Outcome::Injected)
    );
    let bundle = json!("/var/run/trust/ca-certificates.crt");
    let names: Vec<String> = env_of(&t, "log").into_iter().map(|(n, _)| n).collect();
    let want = [
        SSL_CERT_FILE,
        SSL_CERT_DIR,
        "NODE_EXTRA_CA_CERTS",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        JAVA_TOOL_OPTIONS,
    ];
    assert_eq!(names, want);
    for (n, v) in env_of(&t, "log") {
        match n.as_str() {
            "NODE_EXTRA_CA_CERTS" | "REQUESTS_CA_BUNDLE" | "CURL_CA_BUNDLE" => {
                assert_eq!(v, bundle)
            }
            JAVA_TOOL_OPTIONS => assert_eq!(v, json!(java_options())),
            _ => {}
        }
    }
    let sidecar = &t["spec"]["initContainers"][2];
    assert!(sidecar["args"]
        .as_array()
        .unwrap()
        .contains(&json!("--pkcs12")));
    assert_eq!(
        inject_template(&mut t, &InjectOptions::default()),
        Ok(Outcome::Unchanged)
    );
    assert_eq!(remove_template(&mut t), Ok(Outcome::Injected));
    assert_eq!(t, orig);
}

#[test]
fn without_java_the_sidecar_publishes_no_pkcs12_store() {
    let mut t = with_runtimes("node");
    inject_template(&mut t, &InjectOptions::default()).unwrap();
    let args = t["spec"]["initContainers"][2]["args"].as_array().unwrap();
    assert!(!args.contains(&json!("--pkcs12")));
    let mut plain = pod();
    inject_template(&mut plain, &InjectOptions::default()).unwrap();
    assert!(env_of(&plain, "log")
        .iter()
        .all(|(n, _)| n.starts_with("SSL_CERT_")));
}

#[test]
fn java_tool_options_is_appended_to_and_restored_exactly() {
    let mut orig = with_runtimes("java");
    orig["spec"]["containers"][0]["env"] = json!([
        {"name": "JAVA_TOOL_OPTIONS", "value": "-Xmx512m"},
        {"name": "A", "value": "1"},
    ]);
    let mut t = orig.clone();
    inject_template(&mut t, &InjectOptions::default()).unwrap();
    let gw = env_of(&t, "gw");
    let names: Vec<&str> = gw.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["A", SSL_CERT_FILE, SSL_CERT_DIR, JAVA_TOOL_OPTIONS]);
    assert_eq!(gw[3].1, json!(format!("-Xmx512m {}", java_options())));
    let log = env_of(&t, "log");
    assert_eq!(log[2].1, json!(java_options()));
    assert_eq!(remove_template(&mut t), Ok(Outcome::Injected));
    assert_eq!(t, orig);
}

#[test]
fn runtime_variables_of_the_container_follow_on_conflict() {
    let from = json!({"configMapKeyRef": {"name": "jvm", "key": "opts"}});
    let own = [
        (
            "node",
            json!({"name": "NODE_EXTRA_CA_CERTS", "value": "/x.pem"}),
        ),
        (
            "java",
            json!({"name": "JAVA_TOOL_OPTIONS", "valueFrom": from}),
        ),
        (
            "java",
            json!({"name": "JAVA_TOOL_OPTIONS", "value": "-Djavax.net.ssl.trustStore=/x"}),
        ),
    ];
    for (runtime, entry) in own {
        let mut orig = with_runtimes(runtime);
        orig["spec"]["containers"][1]["env"] = json!([entry.clone()]);
        let mut t = orig.clone();
        let err = inject_template(&mut t, &InjectOptions::default()).unwrap_err();
        assert!(matches!(err, InjectError::Conflict { ref container, .. } if container == "log"));
        assert_eq!(t, orig);
        t["metadata"]["annotations"][ANN_ON_CONFLICT] = json!("skip");
        let skipping = t.clone();
        inject_template(&mut t, &InjectOptions::default()).unwrap();
        assert_eq!(t["spec"]["containers"][1]["env"], json!([entry]));
        let skipped = t["metadata"]["annotations"][ANN_SKIPPED].as_str().unwrap();
        assert!(skipped.starts_with("log: already has env"), "{skipped}");
        let force = InjectOptions {
            force: true,
            ..Default::default()
        };
        let mut forced = orig.clone();
        inject_template(&mut forced, &force).unwrap();
        assert!(!forced["spec"]["containers"][1]["env"]
            .as_array()
            .unwrap()
            .contains(&entry));
        assert_eq!(remove_template(&mut forced), Ok(Outcome::Injected));
        assert_eq!(forced, orig);
        assert_eq!(remove_template(&mut t), Ok(Outcome::Injected));
        assert_eq!(t, skipping);
    }
}

#[test]
fn an_unknown_runtime_is_refused_naming_the_annotation() {
    let mut t = with_runtimes("node,ruby");
    let err = inject_template(&mut t, &InjectOptions::default()).unwrap_err();
    assert!(matches!(
        err,
        InjectError::BadAnnotation {
            name: ANN_RUNTIMES,
            ..
        }
    ));
    assert!(err.to_string().contains("\"ruby\""), "{err}");
}
