// Drives the operations dashboard in headless Debian Chromium with playwright-core (no browser download).
// Usage: node dashboard_driver.cjs BASE_URL SCREENSHOT_DIR [CHROMIUM]
// Prints one JSON object with what it saw; exits non-zero (with the reason on stderr) when a step fails.
"use strict";
const path = require("path");
const { chromium } = require("playwright-core");

const [base, outDir, executable = "/usr/bin/chromium"] = process.argv.slice(2);

(async () => {
  const browser = await chromium.launch({ executablePath: executable, headless: true, args: ["--no-sandbox"] });
  const seen = { consoleErrors: [], dialogs: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 1360, height: 1100 } });
    page.on("console", (m) => { if (m.type() === "error") seen.consoleErrors.push(m.text()); });
    page.on("pageerror", (e) => seen.consoleErrors.push(String(e)));
    page.on("dialog", (d) => { seen.dialogs.push(d.message()); d.accept(); });
    page.setDefaultTimeout(30000);

    await page.goto(`${base}/api/dashboard`);
    await page.waitForSelector("#runs tbody tr[data-id]");
    seen.initialRows = await page.locator("#runs tbody tr[data-id]").count();

    await page.selectOption("#status-filter", "Failed");
    await page.click("#apply");
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#runs tbody tr[data-id]")];
      return rows.length > 0 && rows.every((r) => r.dataset.status === "Failed");
    });
    seen.failedRows = await page.locator("#runs tbody tr[data-id]").count();
    seen.failureReasons = await page.locator("#reasons tbody tr").allInnerTexts();

    const row = page.locator("#runs tbody tr[data-id]").first();
    seen.runId = await row.getAttribute("data-id");
    await row.click();
    await page.waitForSelector("#detail:not([hidden]) .step[data-status='failed']");
    seen.errorText = await page.locator("#run-error").innerText();
    seen.failedSteps = await page.locator(".step[data-status='failed']").evaluateAll((n) => n.map((x) => x.dataset.step));
    seen.attemptErrors = await page.locator(".attempt .e").allInnerTexts();
    await page.screenshot({ path: path.join(outDir, "dashboard-failed.png"), fullPage: true });

    await page.click("#replay-auto");
    await page.waitForFunction(() => document.querySelector("#detail").dataset.status === "Completed", null, { timeout: 90000 });
    await page.waitForFunction(() => document.querySelector("#image-canvas").width > 10 && document.querySelectorAll("#tags .chip").length > 0);
    seen.finalStatus = await page.locator("#run-status").innerText();
    seen.tags = await page.locator("#tags .chip").allInnerTexts();
    seen.steps = await page.locator(".step").evaluateAll((n) => n.map((x) => [x.dataset.step, x.dataset.status]));
    seen.canvas = await page.locator("#image-canvas").evaluate((c) => [c.width, c.height]);
    seen.chartBars = await page.locator("#chart rect").count();
    await page.screenshot({ path: path.join(outDir, "dashboard-replayed.png"), fullPage: true });
    process.stdout.write(JSON.stringify(seen));
  } catch (err) {
    process.stderr.write(`dashboard driver failed: ${err && err.stack ? err.stack : err}\n${JSON.stringify(seen)}\n`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
