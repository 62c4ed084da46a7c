// Shared by the browser tests: arguments, launching Debian's chromium through playwright-core, and
// collecting every console error, page error and failed request (any of them fails a test).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export const SKIP = 77;

/// "--name value" pairs into an object.
export function parseArgs(argv) {
  const out = {};
  for (let i = 0; i + 1 < argv.length; i += 2) {
    if (!argv[i].startsWith("--")) throw new Error("unexpected argument " + argv[i]);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

/// Ends the process after `ms` whatever it waits for, so a hung browser cannot hold ctest.
export function deadline(ms, what) {
  const t = setTimeout(() => {
    console.error(`FAIL: ${what} did not finish within ${ms / 1000} s`);
    process.exit(1);
  }, ms);
  t.unref();
}

/// playwright-core's chromium, driving the given executable; exits with SKIP when it is missing.
export async function launch(args) {
  if (!args.chromium || !existsSync(args.chromium)) {
    console.log(`skipped: no chromium at ${args.chromium} (Debian package chromium; scripts/test installs it)`);
    process.exit(SKIP);
  }
  const entry = join(args.modules, "playwright-core", "index.mjs");
  if (!existsSync(entry)) throw new Error(`playwright-core not installed in ${args.modules} (the browser_npm_ci test installs it)`);
  const { chromium } = await import(pathToFileURL(entry).href);
  return chromium.launch({
    executablePath: args.chromium,
    headless: true,
    chromiumSandbox: false, // --no-sandbox: the tests may run as root
    args: [
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 30000,
  });
}

/// A page at laptop size whose console errors, uncaught exceptions and failed requests go to `problems`.
export async function openPage(browser, problems) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => {
    // A poll cut short by the page closing is not a fault of the page.
    if (!page.isClosed()) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ""}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  return page;
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
  console.log(`ok: ${message}`);
}
