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
    assert_eq!(inits, [COPY_INIT, SIDECAR, "setup"]);
    let vols = names_of(t["spec"]["volumes"].as_array().unwrap());
    assert_eq!(vols, [VOL_SECRET, VOL_BASE, VOL_TRUST, "config"]);
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
    assert_eq!(inits, [COPY_INIT, SIDECAR]);
    assert_eq!(t["spec"]["initContainers"][0]["image"], "example/gw:1");
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
    assert_eq!(t["spec"]["initContainers"][0]["image"], "example/log:1");
    assert!(t["spec"]["initContainers"][1]["args"]
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
