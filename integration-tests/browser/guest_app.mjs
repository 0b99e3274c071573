// The guest's page in headless Chromium, as a guest on a phone uses it:
// consent, a selfie from a file, results, the viewer, an error that keeps the
// results, two searches racing, "download all", English at desktop size,
// "forget me", and a bad link. Screenshots of each state.
//
//   node integration-tests/browser/guest_app.mjs <gateway url> <token> <selfie> <no-face image> <screenshot dir> <another guest's selfie> <camera.y4m>
//
// Prints one JSON line of what it saw; the Rust test (tests/guest_app.rs) judges it.
import { readFileSync } from "node:fs";
import path from "node:path";
import { axe, launch, watch } from "./lib.mjs";

const [base, token, selfie, noFace, shots, otherSelfie, cameraVideo] = process.argv.slice(2);
// After "forget me" the guest is gone: the accessibility pass searches as someone else.
const forgottenSelfie = otherSelfie || selfie;
const seen = { steps: [] };
const step = (name, data = {}) => seen.steps.push({ name, ...data });
const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: false });

const browser = await launch();
try {
  // --- a phone, Russian ---------------------------------------------------
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: "ru-RU",
    acceptDownloads: true,
  });
  const page = await phone.newPage();
  const net = watch(page, base);
  page.on("dialog", (d) => d.accept());
  const started = Date.now();
  await page.goto(`${base}/e/${token}`);
  await page.waitForSelector("[data-state=consent]");
  step("consent", {
    ms: Date.now() - started,
    title: await page.locator("h1").innerText(),
    text: await page.locator("[data-state=consent]").innerText(),
    continueDisabled: await page.locator("[data-state=consent] button").isDisabled(),
    selfieButtons: await page.locator("[data-state=selfie]").count(),
    counts: (await page.locator(".counts").allInnerTexts()).join(" | "),
  });
  await shot(page, "guest-phone-consent");
  await page.locator("[data-state=consent] input[type=checkbox]").check();
  await page.locator("[data-state=consent] button").click();
  await page.waitForSelector("[data-state=selfie]");
  await shot(page, "guest-phone-selfie");

  // A selfie from a file: results with thumbnails.
  const searchStarted = Date.now();
  await page.locator("[data-state=selfie] input[type=file]").setInputFiles(selfie);
  await page.waitForSelector(".grid img");
  await page.waitForFunction(() => [...document.querySelectorAll(".grid img")].every((i) => i.complete));
  step("results", {
    ms: Date.now() - searchStarted,
    tiles: await page.locator(".grid img").count(),
    sources: await page.locator(".grid img").evaluateAll((imgs) => imgs.map((i) => i.getAttribute("src"))),
    sections: await page.locator("section h2").allInnerTexts(),
    status: await page.locator("[role=status]").last().innerText(),
    columns: await page.locator(".grid").first().evaluate((g) => getComputedStyle(g).gridTemplateColumns.split(" ").length),
    percentShown: /\d+%/.test(await page.locator(".grid").first().innerText()),
  });
  await shot(page, "guest-phone-results");

  // The viewer: the screen-size preview, the keyboard, closing.
  await page.locator(".tile").first().click();
  await page.waitForSelector(".viewer img");
  const first = await page.locator(".viewer img").getAttribute("src");
  await page.waitForFunction(() => document.querySelector(".viewer img")?.complete);
  await shot(page, "guest-phone-viewer");
  await page.keyboard.press("ArrowRight");
  const second = await page.locator(".viewer img").getAttribute("src");
  const download = await page.locator(".viewer a[download]").getAttribute("href");
  await page.keyboard.press("Escape");
  step("viewer", { first, second, download, closed: (await page.locator(".viewer").count()) === 0 });

  // An error keeps the results.
  const tiles = await page.locator(".grid img").count();
  await page.locator("[data-state=selfie] input[type=file]").setInputFiles(noFace);
  await page.waitForSelector(".error");
  step("error", {
    text: await page.locator(".error").innerText(),
    tilesBefore: tiles,
    tilesAfter: await page.locator(".grid img").count(),
  });
  await shot(page, "guest-phone-error");

  // Two searches race: the first (no face) answers last, yet the newer one
  // (the real selfie) is what the page shows.
  let held = 0;
  await page.route("**/search?**", async (route) => {
    held += 1;
    if (held === 1) await new Promise((r) => setTimeout(r, 2500));
    await route.continue();
  });
  await page.locator("[data-state=selfie] input[type=file]").setInputFiles(noFace);
  await page.waitForTimeout(300);
  await page.locator("[data-state=selfie] input[type=file]").setInputFiles(selfie);
  await page.waitForTimeout(4000);
  step("race", {
    searches: held,
    error: await page.locator(".error").count(),
    tiles: await page.locator(".grid img").count(),
  });
  await page.unroute("**/search?**");

  // A search the gateway sheds (429 with Retry-After: many guests at once)
  // is sent again by itself after the wait, which the page counts down.
  let shed = 0;
  await page.route("**/search?**", async (route) => {
    shed += 1;
    if (shed > 1) return route.continue();
    await route.fulfill({
      status: 429,
      headers: { "retry-after": "2", "content-type": "application/json" },
      body: JSON.stringify({ error: { code: "OVERLOADED", message: "many guests are searching right now" } }),
    });
  });
  await page.locator("[data-state=selfie] input[type=file]").setInputFiles(selfie);
  await page.waitForFunction(
    () => /снова через/.test([...document.querySelectorAll("[role=status]")].pop()?.textContent ?? ""),
    null,
    { timeout: 15000 },
  );
  const waiting = await page.locator("[role=status]").last().innerText();
  await shot(page, "guest-phone-shed");
  await page.waitForTimeout(5000);
  step("shed", {
    searches: shed,
    waiting,
    error: await page.locator(".error").count(),
    tiles: await page.locator(".grid img").count(),
  });
  await page.unroute("**/search?**");

  // Me and a friend: the guest (person 1) with person 2, in one photo.
  await page.locator("[data-action=together]").click();
  await page.locator("[data-action=together] + input[type=file]").setInputFiles(otherSelfie);
  await page.waitForSelector("[data-state=together] img, [data-state=together-none], .error", { timeout: 60000 });
  step("together", {
    tiles: await page.locator("[data-state=together] img").count(),
    error: (await page.locator(".error").allInnerTexts()).join(" "),
  });
  await shot(page, "guest-phone-together");

  // Download all: a ZIP.
  const [zip] = await Promise.all([
    page.waitForEvent("download"),
    page.locator(".actions button").first().click(),
  ]);
  const zipPath = path.join(shots, "guest-download.zip");
  await zip.saveAs(zipPath);
  const bytes = readFileSync(zipPath);
  step("download", { file: zip.suggestedFilename(), size: bytes.length, signature: bytes.subarray(0, 4).toString("hex") });

  // --- English, desktop (before the guest is forgotten) ---------------------------------------------------------
  const desk = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  const dpage = await desk.newPage();
  const dnet = watch(dpage, base);
  await dpage.goto(`${base}/e/${token}`);
  await dpage.waitForSelector("[data-state=consent]");
  step("english", { text: await dpage.locator("[data-state=consent] h2").innerText() });
  await dpage.locator("[data-state=consent] input[type=checkbox]").check();
  await dpage.locator("[data-state=consent] button").click();
  await dpage.locator("[data-state=selfie] input[type=file]").setInputFiles(selfie);
  await dpage.waitForSelector(".grid img, [data-state=empty]");
  await dpage.waitForTimeout(500);
  step("desktop", {
    columns: await dpage
      .locator(".grid")
      .first()
      .evaluate((g) => getComputedStyle(g).gridTemplateColumns.split(" ").length)
      .catch(() => 0),
    empty: await dpage.locator("[data-state=empty]").count(),
  });
  await shot(dpage, "guest-desktop-results");
  const deskOutside = dnet.outside;
  const deskErrors = dnet.errors;
  await desk.close();
  // Forget me (the confirm dialog is accepted): the receipt.
  await page.locator(".actions button.link").click();
  await page.waitForSelector("[data-state=forgotten]");
  step("forgotten", {
    text: await page.locator("[data-state=forgotten]").innerText(),
    tiles: await page.locator(".grid img").count(),
  });
  await shot(page, "guest-phone-forgotten");

  // A bad link says so and offers no selfie button.
  await page.goto(`${base}/e/not-a-real-link`);
  await page.waitForSelector("[data-state=link-error]");
  step("bad-link", {
    text: await page.locator("[data-state=link-error]").innerText(),
    buttons: await page.locator("[data-state=selfie], [data-state=consent]").count(),
  });
  await shot(page, "guest-phone-bad-link");
  seen.outside = [...net.outside, ...deskOutside];
  // The statuses the steps provoke (a bad link, a selfie without a face, the
  // shed search's 429) are logged by the browser; nothing else may be.
  seen.errors = [...net.errors, ...deskErrors].filter(
    (e) => !/Failed to load resource: the server responded with a status of (404|410|422|429)/.test(e),
  );
  await phone.close();

  // --- the in-page camera: Chromium's fake camera plays another guest's
  // selfie (a Y4M video); a shot from it finds their photos.
  const camBrowser = await launch([
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    `--use-file-for-fake-video-capture=${cameraVideo}`,
  ]);
  try {
    const cam = await camBrowser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: "ru-RU" });
    await cam.grantPermissions(["camera"], { origin: base });
    const cpage = await cam.newPage();
    const cnet = watch(cpage, base);
    await cpage.goto(`${base}/e/${token}`);
    await cpage.waitForSelector("[data-state=consent]");
    await cpage.locator("[data-state=consent] input[type=checkbox]").check();
    await cpage.locator("[data-state=consent] button").click();
    await cpage.locator("[data-action=camera]").click();
    await cpage.waitForSelector("[data-action=shoot]:not([disabled])", { timeout: 20000 });
    await cpage.waitForTimeout(500);
    const video = await cpage.locator(".camera video").evaluate((v) => ({ width: v.videoWidth, height: v.videoHeight, playing: !v.paused }));
    await shot(cpage, "guest-phone-camera");
    await cpage.locator("[data-action=shoot]").click();
    await cpage.waitForSelector(".grid img, [data-state=empty], .error", { timeout: 60000 });
    step("camera", {
      video,
      closed: (await cpage.locator("[data-state=camera]").count()) === 0,
      tiles: await cpage.locator(".grid img").count(),
      error: (await cpage.locator(".error").allInnerTexts()).join(" "),
    });
    seen.outside.push(...cnet.outside);
    await cam.close();
  } finally {
    await camBrowser.close();
  }

  // --- accessibility: axe-core on every state (its script needs the CSP off) --
  seen.axe = [];
  const a11y = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "ru-RU", bypassCSP: true });
  const apage = await a11y.newPage();
  await apage.goto(`${base}/e/${token}`);
  await apage.waitForSelector("[data-state=consent]");
  seen.axe.push(await axe(apage, "guest consent"));
  await apage.locator("[data-state=consent] input[type=checkbox]").check();
  await apage.locator("[data-state=consent] button").click();
  await apage.waitForSelector("[data-state=selfie]");
  seen.axe.push(await axe(apage, "guest selfie"));
  await apage.locator("[data-state=selfie] input[type=file]").setInputFiles(noFace);
  await apage.waitForSelector(".error");
  seen.axe.push(await axe(apage, "guest error"));
  await apage.locator("[data-state=selfie] input[type=file]").setInputFiles(forgottenSelfie);
  await apage.waitForSelector(".grid img, [data-state=empty]");
  seen.axe.push(await axe(apage, "guest results"));
  await apage.goto(`${base}/e/not-a-real-link`);
  await apage.waitForSelector("[data-state=link-error]");
  seen.axe.push(await axe(apage, "guest bad link"));
  await a11y.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
