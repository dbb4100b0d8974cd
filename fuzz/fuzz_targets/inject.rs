//! Any text a chart can render: `inject` must never panic, and when it succeeds its
//! output must be a fixed point (`inject | inject` = `inject`, byte for byte): a
//! re-serialised document that read back differently would break that.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trust_injector::inject::manifest::{process, Action, Input};
use trust_injector::inject::InjectOptions;

/// `inject` runs on a thread with a 64 MiB stack (deep YAML recurses); so does this.
fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let text = text.to_string();
    on_big_stack(move || {
        let opts = InjectOptions::default();
        let input = [Input {
            name: "fuzz".into(),
            text,
        }];
        if let Ok((out, _)) = process(&input, &opts, Action::Inject) {
            let again = [Input {
                name: "out".into(),
                text: out.clone(),
            }];
            let (twice, _) =
                process(&again, &opts, Action::Inject).expect("inject reads its own output");
            assert_eq!(twice, out, "inject | inject differs from inject");
            let _ = process(&again, &opts, Action::Remove).expect("remove reads inject's output");
        }
    });
});
