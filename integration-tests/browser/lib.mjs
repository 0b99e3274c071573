// Shared by the browser checks: headless Debian Chromium driven by playwright-core
// (scripts/lib/deps.sh, step `browser`). Never downloads a browser.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const tools = path.resolve(
  path.dirname(new URL(import.meta.url).pathname),
  "../../.facepass/tools/node_modules",
);
const { chromium } = require(path.join(tools, "playwright-core"));

export async function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.FACEPASS_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", ...extraArgs],
  });
}

// Records every request a page makes that does not go to `origin`, and what it
// logs as errors.
export function watch(page, origin) {
  const seen = { outside: [], errors: [], requests: 0 };
  page.on("request", (request) => {
    seen.requests += 1;
    const url = request.url();
    if (!url.startsWith(origin) && !url.startsWith("data:") && !url.startsWith("blob:")) {
      seen.outside.push(url);
    }
  });
  page.on("console", (message) => {
    if (message.type() === "error") seen.errors.push(message.text());
  });
  page.on("pageerror", (error) => seen.errors.push(String(error)));
  return seen;
}

const axeSource = path.join(tools, "axe-core/axe.min.js");

// axe-core's serious and critical violations on the page as it is now
// (WCAG 2.1 A and AA, and best practices). The page's context must be made
// with `bypassCSP: true`: the gateway's CSP rightly refuses injected scripts.
export async function axe(page, label) {
  if (!(await page.evaluate(() => "axe" in window))) {
    await page.addScriptTag({ path: axeSource });
  }
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }),
  );
  return {
    page: label,
    passes: result.passes.length,
    violations: result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) })),
  };
}
