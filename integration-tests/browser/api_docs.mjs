// The browsable API reference (/api/v1/docs/) in a real browser: it renders
// every operation of the OpenAPI document and asks nothing of any other host.
//
//   node integration-tests/browser/api_docs.mjs <gateway http url> <screenshot.png>
//
// Prints one JSON line: {"operations", "requests", "outside": [...], "errors": [...]}.
import { launch, watch } from "./lib.mjs";

const [base, shot] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const seen = watch(page, base);
  await page.goto(`${base}/api/v1/docs/`, { waitUntil: "networkidle" });
  await page.waitForSelector(".opblock", { timeout: 20000 });
  const operations = await page.locator(".opblock").count();
  // Open one operation, as a reader would.
  await page.locator(".opblock-summary").first().click();
  await page.waitForTimeout(300);
  if (shot) await page.screenshot({ path: shot, fullPage: false });
  console.log(JSON.stringify({ operations, ...seen }));
} finally {
  await browser.close();
}
