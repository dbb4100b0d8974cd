//! The `inject` subcommand: its flags, reading the inputs, and writing the result only
//! when everything succeeded (a Helm post-renderer's partial output would be applied).

use super::manifest::{self, Action, Input};
use super::mutate::{InjectOptions, Mode};
use clap::Args;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// `inject` options. Each also has an environment variable, so the Helm 4 plugin (which
/// runs a fixed command) can be configured too; annotations on a pod template override
/// them for that workload.
#[derive(Debug, Clone, Args)]
pub struct InjectArgs {
    /// Manifests: files, directories (read recursively for *.yaml, *.yml, *.json) or `-`
    /// for stdin (the default).
    #[arg(value_name = "PATH|-")]
    pub paths: Vec<PathBuf>,
    /// Write the result to FILE instead of stdout (only when every input succeeded).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Take out an earlier injection (read from the trust-injector.io/status annotation).
    #[arg(long)]
    pub remove: bool,
    /// Name of the CA Secret mounted as the sidecar's source.
    #[arg(long, value_name = "NAME", env = "TRUST_INJECTOR_INJECT_SECRET")]
    pub secret: Option<String>,
    /// The trust-injector image (default: this version's).
    #[arg(long, value_name = "IMAGE", env = "TRUST_INJECTOR_INJECT_IMAGE")]
    pub image: Option<String>,
    /// A container that gets the trust (repeatable; default: every application container).
    #[arg(
        long = "container",
        value_name = "NAME",
        env = "TRUST_INJECTOR_INJECT_CONTAINERS",
        value_delimiter = ','
    )]
    pub containers: Vec<String>,
    /// Take only the Secret's keys matching GLOB (repeatable), passed to the sidecar.
    #[arg(
        long = "include",
        value_name = "GLOB",
        env = "TRUST_INJECTOR_INJECT_INCLUDE",
        value_delimiter = ','
    )]
    pub include: Vec<String>,
    /// `native` (Kubernetes >= 1.29: init container with restartPolicy Always) or
    /// `classic` (`run --once` init container and a regular sidecar).
    #[arg(long, value_name = "MODE", env = "TRUST_INJECTOR_INJECT_MODE", default_value = "native", value_parser = parse_mode)]
    pub mode: Mode,
    /// The sidecar's resources as JSON, e.g. '{"limits":{"memory":"64Mi"}}'.
    #[arg(long, value_name = "JSON", env = "TRUST_INJECTOR_INJECT_RESOURCES", value_parser = parse_resources)]
    pub resources: Option<serde_json::Value>,
    /// Take over a container's own SSL_CERT_FILE/SSL_CERT_DIR or mount at /var/run/trust
    /// (restored by --remove) instead of refusing.
    #[arg(long)]
    pub force: bool,
    /// OpenShift (restricted-v2 SCC): no fixed runAsUser/runAsGroup on what is added
    /// (annotation `trust-injector.io/openshift` overrides).
    #[arg(long, env = "TRUST_INJECTOR_INJECT_OPENSHIFT", action = clap::ArgAction::SetTrue, value_parser = crate::config::parse_bool)]
    pub openshift: bool,
}

/// `--mode` of `inject` and `webhook`.
pub(crate) fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
}

/// `--resources` of `inject` and `webhook`: a JSON object.
pub(crate) fn parse_resources(s: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(s) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl InjectArgs {
    /// The mutation's options from the flags.
    pub fn options(&self) -> InjectOptions {
        let d = InjectOptions::default();
        InjectOptions {
            secret: self.secret.clone().unwrap_or(d.secret),
            image: self.image.clone().unwrap_or(d.image),
            containers: self.containers.clone(),
            include: self.include.clone(),
            mode: self.mode,
            resources: self.resources.clone().unwrap_or(d.resources),
            force: self.force,
            openshift: self.openshift,
            ..d
        }
    }
}

/// Runs `inject`: 0 on success, 1 on bad input (nothing written), 2 on bad usage.
pub fn run(args: &InjectArgs) -> u8 {
    let inputs = match read_inputs(&args.paths) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("trust-injector inject: {e}");
            return 2;
        }
    };
    let action = if args.remove {
        Action::Remove
    } else {
        Action::Inject
    };
    let (out, summary) = match process_on_big_stack(inputs, args.options(), action) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("trust-injector inject: {e}");
            return 1;
        }
    };
    for s in &summary.skipped {
        eprintln!("trust-injector inject: skipped {s}");
    }
    for s in &summary.left_out {
        eprintln!("trust-injector inject: {s}");
    }
    if let Err(e) = write_output(args.output.as_deref(), out.as_bytes()) {
        eprintln!("trust-injector inject: {e}");
        return 1;
    }
    0
}

/// Stack for parsing and mutating: YAML nesting is allowed to [`manifest::MAX_DEPTH`]
/// levels (CRD schemas are deep), and parsing, cloning and writing a value recurse once
/// per level. A debug build overflowed the default main stack well before the limit
/// (docs/performance.md has where); this leaves ample room. Only the pages used are
/// ever touched.
const STACK: usize = 64 * 1024 * 1024;

/// Runs [`manifest::process`] on a thread with a [`STACK`]-sized stack.
fn process_on_big_stack(
    inputs: Vec<Input>,
    opts: super::InjectOptions,
    action: Action,
) -> Result<(String, manifest::Summary), String> {
    let worker = std::thread::Builder::new()
        .name("inject".into())
        .stack_size(STACK)
        .spawn(move || manifest::process(&inputs, &opts, action))
        .map_err(|e| format!("cannot start the worker thread: {e}"))?;
    match worker.join() {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => {
            Err("internal error while processing the manifests (a bug: please report it)".into())
        }
    }
}

/// Reads every path (stdin for `-` or for no path at all), directories recursively in
/// name order so the output is stable.
fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, String> {
    let mut inputs = Vec::new();
    if paths.is_empty() {
        return Ok(vec![read_stdin()?]);
    }
    for p in paths {
        if p.as_os_str() == "-" {
            inputs.push(read_stdin()?);
        } else if p.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files).map_err(|e| format!("{}: {e}", p.display()))?;
            files.sort();
            for f in files {
                inputs.push(read_file(&f)?);
            }
        } else {
            inputs.push(read_file(p)?);
        }
    }
    Ok(inputs)
}

fn read_stdin() -> Result<Input, String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("stdin: {e}"))?;
    Ok(Input {
        name: "-".into(),
        text,
    })
}

fn read_file(p: &Path) -> Result<Input, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(Input {
        name: p.display().to_string(),
        text,
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// Stdout, or FILE replaced atomically (a temporary file renamed over it).
fn write_output(path: Option<&Path>, bytes: &[u8]) -> Result<(), String> {
    let Some(path) = path else {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(bytes)
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("stdout: {e}"));
    };
    // `/`, `..` or a path ending in `..` name a directory, not a file to replace.
    let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else {
        return Err(format!("{}: not a file name", path.display()));
    };
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            // Best effort: the error worth reporting is the write's; a
            // temporary file that was never created cannot be removed.
            if let Err(cleanup) = std::fs::remove_file(&tmp) {
                if cleanup.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("trust-injector inject: {}: {cleanup}", tmp.display());
                }
            }
            format!("{}: {e}", path.display())
        })
}
