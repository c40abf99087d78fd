// Opens one run in the operations dashboard (headless Debian Chromium, playwright-core) and reads its image view:
// the custom label chips and the document fields table. Usage: node dashboard_image_driver.cjs BASE_URL
// SCREENSHOT_DIR CHROMIUM RUN_ID. Prints one JSON object; exits non-zero with the reason on stderr.
"use strict";
const path = require("path");
const { chromium } = require("playwright-core");

const [base, outDir, executable, runId] = process.argv.slice(2);

(async () => {
  const browser = await chromium.launch({ executablePath: executable, headless: true, args: ["--no-sandbox"] });
  const seen = { consoleErrors: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 1360, height: 1400 } });
    page.on("console", (m) => { if (m.type() === "error") seen.consoleErrors.push(m.text()); });
    page.on("pageerror", (e) => seen.consoleErrors.push(String(e)));
    page.setDefaultTimeout(30000);
    await page.goto(`${base}/api/dashboard`);
    const row = page.locator(`#runs tbody tr[data-id="${runId}"]`);
    await row.waitFor();
    await row.click();
    await page.waitForFunction(() => document.querySelector("#image-canvas").width > 10
      && document.querySelectorAll("#tags .chip.custom").length > 0
      && document.querySelectorAll("#doc-fields tr").length > 0);
    seen.customChips = await page.locator("#tags .chip.custom").allInnerTexts();
    seen.fieldRows = await page.locator("#doc-fields tr").evaluateAll((rows) =>
      rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent)));
    seen.ocrText = await page.locator("#ocr-text").innerText();
    await page.screenshot({ path: path.join(outDir, "dashboard-image-view.png"), fullPage: true });
    process.stdout.write(JSON.stringify(seen));
  } catch (err) {
    process.stderr.write(`dashboard image driver failed: ${err && err.stack ? err.stack : err}\n${JSON.stringify(seen)}\n`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
