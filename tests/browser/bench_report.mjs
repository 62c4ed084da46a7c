// The benchmark report in headless chromium: runs scripts/bench-report on a fixture of JSON lines,
// opens the page from its file, and checks that every scenario has a chart with a bar per variant,
// the median, spread and ratio to the baseline as computed by hand, and no console error. Saves a
// screenshot to --out.
//   node bench_report.mjs --script S --fixture F --chromium C --modules DIR --work DIR --out FILE.png
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

import { check, deadline, launch, openPage, parseArgs } from "./common.mjs";

const args = parseArgs(process.argv.slice(2));
deadline(45000, "the benchmark report test");

const problems = [];
let browser = null;
let failed = false;
try {
  browser = await launch(args);
  rmSync(args.work, { recursive: true, force: true });
  execFileSync("bash", [args.script, args.fixture, args.work], { stdio: "inherit" });
  const page = await openPage(browser, problems);
  await page.goto(pathToFileURL(join(args.work, "index.html")).href, { waitUntil: "load" });
  await page.waitForSelector(".chart", { timeout: 10000 });

  const charts = await page.$$eval(".chart", (cs) => cs.map((c) => c.dataset.scenario));
  check(JSON.stringify(charts) === JSON.stringify(["chain", "latency", "telemetry_overhead"]),
    `one chart per scenario, in order (${charts.join(", ")})`);
  const rows = async (scenario) =>
    page.$$eval(`.chart[data-scenario="${scenario}"] .variant`, (vs) =>
      vs.map((v) => ({
        variant: v.dataset.variant,
        text: [...v.querySelectorAll("text")].map((t) => t.textContent),
        bars: v.querySelectorAll("rect.bar-rect").length,
        whiskers: v.querySelectorAll("line.whisker").length,
      })));
  const chain = await rows("chain");
  check(chain.map((r) => r.variant).join() === "hand_loop,tbb_batched,weir", "chain has a bar per variant");
  check(chain.every((r) => r.bars === 1 && r.whiskers === 3), "chain's variants show their spread (3 runs each)");
  const weir = chain.find((r) => r.variant === "weir").text;
  check(weir.includes("900.00M (800.00M–1.00G, 3 runs)"), `weir's median and spread (${weir[1]})`);
  check(weir.includes("×0.56"), `weir's ratio to hand_loop, the baseline (${weir[2]})`);
  check(chain.find((r) => r.variant === "hand_loop").text.includes("baseline"), "hand_loop is chain's baseline");

  const latency = await rows("latency");
  const lw = latency.find((r) => r.variant === "weir").text;
  check(lw.includes("400.0 µs") && lw.includes("×200.00"), `latency is charted by p99 (${lw.join(" | ")})`);
  const worse = await page.$$eval('.chart[data-scenario="latency"] [data-variant="weir"] text.worse', (t) => t.length);
  check(worse === 1, "a higher p99 than the baseline reads as worse");

  const overhead = await rows("telemetry_overhead");
  check(overhead.find((r) => r.variant === "weir_no_telemetry").text.includes("baseline"),
    "telemetry_overhead is compared to weir_no_telemetry");
  check(overhead.find((r) => r.variant === "weir_page_open").text.includes("×0.97"), "weir_page_open's ratio");
  const injected = await page.$$eval("b", (bs) => bs.length);
  check(injected === 0, "text in a result line stays text");

  mkdirSync(dirname(args.out), { recursive: true });
  await page.screenshot({ path: args.out, fullPage: true });
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
}
process.exit(failed ? 1 : 0);
