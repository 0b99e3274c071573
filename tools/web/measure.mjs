// Measures the guest page as a guest on a phone meets it (issue 13, item 6):
//
//   1. Lighthouse (mobile emulation, simulated slow 4G and a 4x slower CPU, as
//      Lighthouse's default mobile run): performance, accessibility and best
//      practices, with the page's key timings;
//   2. the time from choosing a selfie to seeing the photos, on Chrome's "Slow 4G"
//      network profile (1.6 Mbps down, 750 kbps up, 150 ms latency) and a 4x
//      slower CPU, for a phone camera's full-size selfie: as the page sends it
//      (scaled to 1280 px in the browser), and sent whole (how the old page did).
//
//   node tools/web/measure.mjs <guest page url> <selfie.jpg> [report dir]
//
// scripts/measure-web.sh starts what it needs and runs this. Figures only: nothing
// here passes or fails.
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

const require = createRequire(import.meta.url);
const tools = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../.facepass/tools/node_modules");
const { chromium } = require(path.join(tools, "playwright-core"));
const lighthouse = (await import(path.join(tools, "lighthouse/core/index.js"))).default;
const chromeLauncher = await import(path.join(tools, "chrome-launcher/dist/index.js"));

const [pageUrl, selfie, reports = "target/web-measure"] = process.argv.slice(2);
mkdirSync(reports, { recursive: true });
const flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];

// --- 1. Lighthouse -----------------------------------------------------------
const chrome = await chromeLauncher.launch({ chromePath: "/usr/bin/chromium", chromeFlags: flags });
let lhr;
try {
  const run = await lighthouse(pageUrl, {
    port: chrome.port,
    output: "html",
    onlyCategories: ["performance", "accessibility", "best-practices"],
    logLevel: "error",
  });
  lhr = run.lhr;
  writeFileSync(path.join(reports, "lighthouse-guest.html"), run.report);
} finally {
  await chrome.kill();
}
const score = (id) => Math.round(lhr.categories[id].score * 100);
const metric = (id) => lhr.audits[id].displayValue;
console.log(`Lighthouse ${lhr.lighthouseVersion}, ${lhr.configSettings.formFactor}, ${lhr.configSettings.throttlingMethod} throttling:`);
console.log(`  performance ${score("performance")}, accessibility ${score("accessibility")}, best practices ${score("best-practices")}`);
console.log(
  `  first contentful paint ${metric("first-contentful-paint")}, largest contentful paint ${metric("largest-contentful-paint")}, ` +
    `total blocking time ${metric("total-blocking-time")}, cumulative layout shift ${metric("cumulative-layout-shift")}`,
);
for (const [id, cat] of Object.entries(lhr.categories)) {
  const lost = cat.auditRefs
    .map((r) => lhr.audits[r.id])
    .filter((a) => a.score !== null && a.score < 1 && a.scoreDisplayMode !== "informative" && a.scoreDisplayMode !== "manual" && a.scoreDisplayMode !== "notApplicable");
  if (lost.length) console.log(`  ${id}: below full marks on ${lost.map((a) => a.id).join(", ")}`);
}

// --- 2. Selfie to photos on slow 4G --------------------------------------------
const SLOW_4G = { offline: false, latency: 150, downloadThroughput: (1.6 * 1024 * 1024) / 8, uploadThroughput: (750 * 1024) / 8 };
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: flags });
try {
  // A phone camera's selfie: the given one at 4032x3024 (12 MP), with a
  // sensor's grain, as JPEG 92%.
  const maker = await browser.newPage();
  const source = `data:image/jpeg;base64,${readFileSync(selfie).toString("base64")}`;
  const camera = await maker.evaluate(async (src) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = 4032;
    canvas.height = 3024;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#777";
    ctx.fillRect(0, 0, 4032, 3024);
    const scale = Math.min(4032 / img.width, 3024 / img.height);
    ctx.drawImage(img, (4032 - img.width * scale) / 2, (3024 - img.height * scale) / 2, img.width * scale, img.height * scale);
    const px = ctx.getImageData(0, 0, 4032, 3024);
    let seed = 7;
    for (let i = 0; i < px.data.length; i += 4) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const n = (seed % 13) - 6;
      px.data[i] += n;
      px.data[i + 1] += n;
      px.data[i + 2] += n;
    }
    ctx.putImageData(px, 0, 0);
    return canvas.toDataURL("image/jpeg", 0.92).split(",")[1];
  }, source);
  await maker.close();
  const cameraSelfie = path.join(reports, "camera-selfie.jpg");
  writeFileSync(cameraSelfie, Buffer.from(camera, "base64"));
  const timeIt = async (label, sendWhole) => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: "ru-RU" });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", SLOW_4G);
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });
    if (sendWhole) {
      // The old page's behaviour: the camera's file as it is.
      await page.addInitScript(() => {
        window.createImageBitmap = () => Promise.reject(new Error("sent whole"));
      });
    }
    // The bytes the page hands to the network for the search.
    await page.addInitScript(() => {
      const send = XMLHttpRequest.prototype.send;
      XMLHttpRequest.prototype.send = function (body) {
        window.__sent = body && body.size !== undefined ? body.size : 0;
        return send.call(this, body);
      };
    });
    const loadStart = Date.now();
    await page.goto(pageUrl);
    await page.waitForSelector("[data-state=consent]");
    const loaded = Date.now() - loadStart;
    await page.locator("[data-state=consent] input[type=checkbox]").check();
    await page.locator("[data-state=consent] button").click();
    const start = Date.now();
    await page.locator("[data-state=selfie] input[type=file]").setInputFiles(cameraSelfie);
    await page.waitForSelector(".grid img, [data-state=empty], .error", { timeout: 180000 });
    const shown = Date.now() - start;
    await page.waitForFunction(() => [...document.querySelectorAll(".grid img")].every((i) => i.complete), null, { timeout: 180000 });
    const thumbs = Date.now() - start;
    const tiles = await page.locator(".grid img").count();
    const sent = await page.evaluate(() => window.__sent ?? 0);
    const problem = (await page.locator(".error, [data-state=empty]").allInnerTexts()).join(" ");
    await context.close();
    if (problem) console.log(`  ${label}: the page said: ${problem}`);
    console.log(
      `  ${label}: ${(sent / 1024).toFixed(0)} KiB sent; results after ${(shown / 1000).toFixed(1)} s, ` +
        `${tiles} thumbnails loaded after ${(thumbs / 1000).toFixed(1)} s (page ready in ${(loaded / 1000).toFixed(1)} s)`,
    );
    return shown;
  };
  console.log(
    `Selfie to photos on Slow 4G (1.6 Mbps down, 750 kbps up, 150 ms) with a 4x slower CPU, ` +
      `a 12 MP camera selfie of ${(statSync(cameraSelfie).size / 1024).toFixed(0)} KiB (${path.basename(selfie)} at 4032x3024):`,
  );
  const scaled = await timeIt("scaled in the browser (the page)", false);
  const whole = await timeIt("sent whole (the old page)", true);
  console.log(`  the page is ${(whole / scaled).toFixed(1)}x faster than sending the selfie whole`);
} finally {
  await browser.close();
}
