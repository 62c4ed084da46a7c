// The live page in headless chromium: starts tests/browser/live_pipeline (a running pipeline with a
// circuit breaker that opens), opens http://127.0.0.1:PORT/, and checks that the graph shows every
// stage, that rates become non-zero, that the open circuit shows, that a click and the keyboard
// (Tab to a stage, Enter) show a stage's sparklines and errors, and that the page runs under its
// Content-Security-Policy without a console error. Saves a screenshot to --out.
//   node live_page.mjs --program P --chromium C --modules DIR --out FILE.png
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { createInterface } from "node:readline";

import { check, deadline, launch, openPage, parseArgs } from "./common.mjs";

const args = parseArgs(process.argv.slice(2));
deadline(75000, "the live page test");

const STAGES = ["readings", "parse", "in_range", "calibrate", "calibrated", "score", "per_sensor", "store"];

function startProgram() {
  const child = spawn(args.program, ["--seconds", "120"], { stdio: ["ignore", "pipe", "inherit"] });
  const url = new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      if (line.startsWith("url ")) resolve(line.slice(4).trim());
    });
    child.on("exit", (code) => reject(new Error(`live_pipeline exited early with ${code}`)));
    setTimeout(() => reject(new Error("live_pipeline printed no url within 15 s")), 15000).unref();
  });
  return { child, url };
}

const problems = [];
const { child, url: urlPromise } = startProgram();
let browser = null;
let failed = false;
try {
  browser = await launch(args);
  const url = await urlPromise;
  const page = await openPage(browser, problems);

  const response = await page.goto(url + "/", { waitUntil: "load" });
  check(response.status() === 200, "GET / answers 200");
  const csp = response.headers()["content-security-policy"] || "";
  check(csp.includes("default-src 'self'"), `the page comes with a strict CSP (${csp})`);

  // The graph: every stage drawn, by name.
  await page.waitForFunction((n) => document.querySelectorAll("#graph .stage").length === n, STAGES.length, {
    timeout: 15000,
  });
  const drawn = await page.$$eval("#graph .stage text.name", (ts) => ts.map((t) => t.textContent));
  for (const name of STAGES) check(drawn.includes(name), `stage ${name} is drawn`);
  const fused = await page.$$eval("#graph .cluster", (cs) => cs.length);
  check(fused >= 1, `fused stages are boxed together (${fused} fused node(s))`);

  // Rates: non-zero once two samples are in.
  await page.waitForFunction(
    () => [...document.querySelectorAll("#graph .stage")].some((s) => Number(s.dataset.inRate) > 0),
    null,
    { timeout: 15000 },
  );
  const rates = await page.$$eval("#graph .stage", (ss) => ss.map((s) => [s.dataset.stage, Number(s.dataset.inRate)]));
  check(rates.find(([n]) => n === "parse")[1] > 0, `parse shows a non-zero rate (${JSON.stringify(rates)})`);
  const edgeLabels = await page.$$eval("#graph .edge .rate", (ts) => ts.map((t) => t.textContent).filter((t) => t));
  check(edgeLabels.some((t) => /[1-9]/.test(t)), `edges show items per second (${edgeLabels.join(", ")})`);

  // The circuit breaker that opened.
  await page.waitForSelector('#graph .stage[data-stage="calibrate"][data-circuit="open"] .badge.circuit-open', {
    timeout: 15000,
  });
  const badge = await page.textContent('#graph .stage[data-stage="calibrate"] .badge.circuit-open');
  check(badge === "CIRCUIT OPEN", `the open circuit shows on calibrate (${badge})`);

  // A click shows the stage's sparklines.
  await page.click('#graph .stage[data-stage="score"]');
  await page.waitForFunction(() => document.querySelector("#detail h2")?.textContent === "score", null, {
    timeout: 5000,
  });
  await page.waitForSelector('#detail .spark[data-series="items in / s"] polyline', { timeout: 15000 });
  const points = await page.getAttribute('#detail .spark[data-series="items in / s"] polyline', "points");
  check(points.split(" ").length >= 2, `clicking score shows its sparkline (${points.split(" ").length} points)`);

  // The keyboard: Tab reaches the stages, Enter selects one.
  await page.focus("body");
  let focused = null;
  for (let i = 0; i < 40 && focused !== "calibrate"; i++) {
    await page.keyboard.press("Tab");
    focused = await page.evaluate(() => document.activeElement?.dataset?.stage ?? null);
  }
  check(focused === "calibrate", "Tab reaches the stages");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelector("#detail h2")?.textContent === "calibrate", null, {
    timeout: 5000,
  });
  await page.waitForSelector("#detail .errors li", { timeout: 10000 });
  const summary = await page.textContent("#detail .errors li");
  check(/calibration service unavailable|circuit breaker is open/.test(summary), `Enter shows calibrate's errors (${summary})`);
  await page.waitForSelector('#detail .spark[data-series="errors / s"] polyline', { timeout: 10000 });

  // Let the sparklines gather a few more seconds before the picture.
  await page.waitForTimeout(4000);
  mkdirSync(dirname(args.out), { recursive: true });
  await page.screenshot({ path: args.out, fullPage: false });
  console.log(`screenshot: ${args.out}`);
  check(problems.length === 0, "no console error, page error or failed request");
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.message}`);
} finally {
  if (problems.length) {
    failed = true;
    for (const p of problems) console.error(`FAIL: ${p}`);
  }
  if (browser) await browser.close().catch(() => {});
  child.kill("SIGTERM");
  await new Promise((r) => (child.exitCode !== null ? r() : child.on("exit", r)));
}
process.exit(failed ? 1 : 0);
