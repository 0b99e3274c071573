// The studio dashboard in headless Chromium, as a studio uses it: sign in
// with an API key, create an event, upload a folder's worth of photos with
// progress, watch indexing live, reload and upload the same files again
// (all skipped), look at a photo's faces, read the guest link and its QR
// code, turn the link off, delete the event. Screenshots of each state.
//
//   node integration-tests/browser/studio_app.mjs <gateway url> <api key> <photo dir> <screenshot dir> <logo.png> <dir of photos to drop>
//
// Prints one JSON line of what it saw; tests/studio_app.rs judges it.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { axe, launch, watch } from "./lib.mjs";

const [base, key, photoDir, shots, logo, dropDir] = process.argv.slice(2);
const files = readdirSync(photoDir).sort().map((f) => path.join(photoDir, f));
const seen = { steps: [] };
const step = (name, data = {}) => seen.steps.push({ name, ...data });
const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`) });
const uploads = async (page) => JSON.parse((await page.locator("[data-uploads]").getAttribute("data-uploads")) || "{}");
const progress = async (page) => JSON.parse((await page.locator("[data-progress]").getAttribute("data-progress")) || "{}");

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "ru-RU" });
  const page = await context.newPage();
  const net = watch(page, base);
  page.on("dialog", (d) => d.accept());

  await page.goto(`${base}/`);
  await page.waitForSelector("[data-state=signin]");
  step("signin-page", { url: page.url() });
  await shot(page, "studio-signin");
  await page.fill("#key", "fp_wrong_key");
  await page.click("[data-state=signin] button[type=submit]");
  await page.waitForSelector("[data-state=signin] .error");
  step("wrong-key", { text: await page.locator("[data-state=signin] .error").innerText() });
  await page.fill("#key", key);
  await page.click("[data-state=signin] button[type=submit]");
  await page.waitForSelector("[data-state=events]");
  const cookies = await context.cookies();
  step("signed-in", {
    cookie: cookies.filter((c) => c.name === "fp_session").map((c) => ({ httpOnly: c.httpOnly, sameSite: c.sameSite })),
    keyInStorage: await page.evaluate(
      (k) => JSON.stringify({ ...localStorage, ...sessionStorage }).includes(k) || document.cookie.includes(k),
      key,
    ),
  });

  // What guests see of the studio: name, colour, privacy link, logo.
  await page.waitForSelector("[data-state=settings]");
  await page.fill("#studio-name", "Фотостудия «Свет»");
  await page.locator("#studio-accent").evaluate((el) => {
    el.value = "#0f766e";
    el.dispatchEvent(new Event("input", { bubbles: true }));
  });
  await page.fill("#studio-privacy", "https://svet.example/privacy");
  await page.click("[data-state=settings] button[type=submit]");
  await page.waitForSelector("[data-state=settings] [role=status]");
  await page.locator("#studio-logo").setInputFiles(logo);
  await page.waitForSelector("[data-state=settings] img.logo");
  await shot(page, "studio-settings");

  // Create an event: its page opens with the guest link and QR code.
  await page.fill("#new-event", "Свадьба Анны и Олега");
  await page.click("[data-state=new-event] button[type=submit]");
  await page.waitForSelector("[data-state=event]");
  const guestUrl = await page.locator("[data-guest-url]").innerText();
  step("created", {
    title: await page.locator("h1").innerText(),
    guestUrl,
    qrModules: Number(await page.locator("svg.qr").getAttribute("data-modules")),
  });

  // Its date and retention.
  await page.fill("#event-date", "2026-06-20");
  await page.fill("#event-retain", "2027-06-20");
  await page.click("[data-state=edit-event] button[type=submit]");
  await page.waitForSelector("[data-state=edit-event] [role=status]");

  // The guest's page carries the studio's branding.
  const branded = await context.newPage();
  await branded.setViewportSize({ width: 390, height: 844 });
  await branded.goto(guestUrl);
  await branded.waitForSelector("[data-state=consent]");
  await branded.waitForFunction(() => document.querySelector("img.logo")?.complete);
  step("guest-branding", {
    header: await branded.locator("header .brand").innerText(),
    logoWidth: await branded.locator("img.logo").evaluate((i) => i.naturalWidth),
    consent: await branded.locator("[data-state=consent]").innerText(),
    privacy: await branded.locator("[data-state=consent] a").getAttribute("href"),
    date: await branded.locator("[data-date]").getAttribute("data-date"),
    button: await branded.locator("[data-state=consent] button").evaluate((b) => getComputedStyle(b).backgroundColor),
  });
  await shot(branded, "guest-phone-branded");
  await branded.close();

  // Bulk upload with progress.
  const started = Date.now();
  await page.locator("input[type=file][multiple]").first().setInputFiles(files);
  await page.waitForSelector("[data-uploads]");
  await shot(page, "studio-uploading");
  await page.waitForFunction(() => {
    const u = JSON.parse(document.querySelector("[data-uploads]")?.getAttribute("data-uploads") || "{}");
    return u.total > 0 && u.done + u.skipped + u.failed === u.total;
  }, null, { timeout: 120000 });
  const uploaded = await uploads(page);
  step("uploaded", { ...uploaded, ms: Date.now() - started });

  // Live indexing progress, to the end.
  await page.waitForFunction(
    (n) => {
      const p = JSON.parse(document.querySelector("[data-progress]")?.getAttribute("data-progress") || "{}");
      return p.total === n && p.pending === 0;
    },
    files.length,
    { timeout: 300000 },
  );
  step("indexed", { ...(await progress(page)), ms: Date.now() - started });
  await page.waitForTimeout(800);
  await shot(page, "studio-event");

  // After a reload the session holds, and the same files are skipped.
  await page.reload();
  await page.waitForSelector("[data-state=events]");
  await page.locator("[data-state=events] li", { hasText: "Свадьба Анны и Олега" }).locator("button").click();
  await page.waitForSelector("[data-state=event]");
  await page.locator("input[type=file][multiple]").first().setInputFiles(files);
  await page.waitForFunction(() => {
    const u = JSON.parse(document.querySelector("[data-uploads]")?.getAttribute("data-uploads") || "{}");
    return u.total > 0 && u.done + u.skipped + u.failed === u.total;
  });
  step("reuploaded", await uploads(page));

  // Drag and drop: two more photos dropped on the upload area are sent.
  const dropped = readdirSync(dropDir).sort().map((f) => ({
    name: f,
    data: readFileSync(path.join(dropDir, f)).toString("base64"),
  }));
  const doneBefore = (await uploads(page)).done;
  await page.locator(".drop").evaluate((zone, files) => {
    const data = new DataTransfer();
    for (const f of files) {
      const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
      data.items.add(new File([bytes], f.name, { type: "image/jpeg" }));
    }
    zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
  }, dropped);
  await page.waitForFunction((n) => {
    const u = JSON.parse(document.querySelector("[data-uploads]")?.getAttribute("data-uploads") || "{}");
    return u.done >= n;
  }, doneBefore + dropped.length, { timeout: 60000 });
  step("dropped", { files: dropped.length, done: (await uploads(page)).done - doneBefore });

  // A photo with its faces drawn.
  await page.locator(".tabs button[data-filter=indexed]").click();
  await page.waitForSelector(".thumbs img");
  await page.locator(".thumbs button").first().click();
  await page.waitForSelector(".framed img");
  await page.waitForFunction(() => Number(document.querySelector("[data-faces]")?.getAttribute("data-faces")) > 0);
  step("photo", {
    boxes: await page.locator(".framed rect").count(),
    thumbs: await page.locator(".thumbs img").count(),
  });
  await shot(page, "studio-photo-faces");
  // Delete that photo (the confirmation is accepted): its tile goes.
  const before = await page.locator(".thumbs li").count();
  await page.locator(".sheet button.danger").click();
  await page.waitForFunction((n) => document.querySelectorAll(".thumbs li").length === n - 1, before);
  step("photo-deleted", { before, after: await page.locator(".thumbs li").count() });

  // An expiry in the past: the link has expired, and a guest is told so.
  await page.fill("#until", "2020-01-01");
  await page.locator("[data-state=share] button", { hasText: "Сохранить" }).click();
  await page.waitForTimeout(500);
  const expiredPage = await context.newPage();
  await expiredPage.setViewportSize({ width: 390, height: 844 });
  await expiredPage.goto(guestUrl);
  await expiredPage.waitForSelector("[data-state=link-error]");
  step("guest-link-expired", {
    text: await expiredPage.locator("[data-state=link-error]").innerText(),
    buttons: await expiredPage.locator("[data-state=selfie], [data-state=consent]").count(),
  });
  await shot(expiredPage, "guest-phone-link-expired");
  await expiredPage.close();
  await page.locator("#until").evaluate((el) => {
    el.value = "";
    el.dispatchEvent(new Event("input", { bubbles: true }));
  });
  await page.locator("[data-state=share] button", { hasText: "Сохранить" }).click();
  await page.waitForTimeout(500);

  // The link off: guests are told.
  await page.locator("[data-state=share] button", { hasText: "Отключить" }).click();
  await page.waitForSelector("[data-state=share] .bad-text");
  const token = new URL(guestUrl).pathname.split("/").pop();
  const guest = await page.request.get(`${base}/api/v1/guest/${token}`);
  step("link-off", { status: guest.status(), text: await page.locator("[data-state=share] .bad-text").innerText() });
  await shot(page, "studio-share-off");
  // What a guest with that link now sees.
  const guestPage = await context.newPage();
  await guestPage.setViewportSize({ width: 390, height: 844 });
  await guestPage.goto(guestUrl);
  await guestPage.waitForSelector("[data-state=link-error]");
  step("guest-link-off", {
    text: await guestPage.locator("[data-state=link-error]").innerText(),
    buttons: await guestPage.locator("[data-state=selfie], [data-state=consent]").count(),
  });
  await shot(guestPage, "guest-phone-link-off");
  await guestPage.close();

  // Delete the event.
  await page.locator("button.danger", { hasText: "Удалить событие" }).click();
  await page.waitForSelector("[data-state=events]");
  await page.waitForTimeout(300);
  step("deleted", { left: await page.locator("[data-state=events] li", { hasText: "Свадьба Анны и Олега" }).count() });
  await shot(page, "studio-events");

  seen.outside = net.outside;
  seen.errors = net.errors.filter((e) => !/status of (401|404|410)/.test(e));

  // --- accessibility: axe-core on each screen (its script needs the CSP off) --
  seen.axe = [];
  const a11y = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "ru-RU", bypassCSP: true });
  const apage = await a11y.newPage();
  apage.on("dialog", (d) => d.accept());
  await apage.goto(`${base}/studio`);
  await apage.waitForSelector("[data-state=signin]");
  seen.axe.push(await axe(apage, "studio sign-in"));
  await apage.fill("#key", key);
  await apage.click("[data-state=signin] button[type=submit]");
  await apage.waitForSelector("[data-state=events]");
  await apage.fill("#new-event", "Проверка доступности");
  await apage.click("[data-state=new-event] button[type=submit]");
  await apage.waitForSelector("[data-state=event]");
  await apage.locator("input[type=file][multiple]").first().setInputFiles(files.slice(0, 2));
  await apage.waitForFunction(() => {
    const p = JSON.parse(document.querySelector("[data-progress]")?.getAttribute("data-progress") || "{}");
    return p.total === 2 && p.pending === 0;
  }, null, { timeout: 120000 });
  await apage.locator(".tabs button[data-filter=indexed]").click();
  await apage.waitForSelector(".thumbs img");
  seen.axe.push(await axe(apage, "studio event"));
  await apage.locator(".thumbs button").first().click();
  await apage.waitForSelector(".framed img");
  seen.axe.push(await axe(apage, "studio photo"));
  await apage.keyboard.press("Escape");
  await apage.locator("button.link", { hasText: "←" }).click();
  await apage.waitForSelector("[data-state=events] li");
  seen.axe.push(await axe(apage, "studio events"));
  await a11y.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
