// Drives the dashboard in headless Debian Chromium (playwright-core) as an operator whose images container
// holds an attacker's HTML, and as an operator uploading through a signed URL to the blob service (another
// origin). Usage: node dashboard_security_driver.cjs '<json spec>'
//   spec: {phase: "attack"|"nocors", base, master, attackId, attackRun, image, outDir, chromium}
// Prints one JSON object with what it saw; exits non-zero (with the reason on stderr) when a step fails.
"use strict";
const path = require("path");
const { chromium } = require("playwright-core");

const spec = JSON.parse(process.argv[2]);

function watch(page, seen) {
  page.on("console", (m) => { if (m.type() === "error") seen.consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => seen.consoleErrors.push(String(e)));
  page.on("dialog", (d) => { seen.dialogs.push(d.message()); d.accept(); });
}

// Every request the browser makes, from every page and frame: keys must never travel in a URL, and the
// attacker's script must never get to call anything.
function record(context, seen) {
  context.on("request", (r) => {
    seen.requests.push({ method: r.method(), url: r.url(), frame: r.frame() ? r.frame().url() : "" });
  });
  context.on("response", (r) => {
    if (r.request().method() === "PUT") seen.puts.push({ url: r.url().split("?")[0], status: r.status() });
  });
}

async function attackPhase(browser, seen) {
  // 1. the lure: the content URL shown in the run view, opened with the admin key as the old page did
  const lure = await browser.newContext();
  const requests = { requests: [], puts: [] };
  record(lure, requests);
  const page = await lure.newPage();
  watch(page, seen);
  const resp = await page.goto(`${spec.base}/api/dashboard/images/${spec.attackId}/content?code=${encodeURIComponent(spec.master)}`);
  await page.waitForLoadState("load");
  seen.lure = {
    status: resp.status(),
    contentType: resp.headers()["content-type"] || "",
    title: await page.title(),
    // a request after the navigation itself can only come from content the response made the browser run
    laterRequests: requests.requests.slice(1).map((r) => r.url),
  };
  await lure.close();

  // 2. the dashboard, with the key in the fragment only; then the attacker's run in the run view
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 1300 } });
  record(ctx, seen);
  const dash = await ctx.newPage();
  watch(dash, seen);
  dash.setDefaultTimeout(30000);
  await dash.goto(`${spec.base}/api/dashboard#code=${encodeURIComponent(spec.master)}`);
  await dash.waitForSelector("#runs tbody tr[data-id]");
  seen.urlAfterLoad = dash.url();
  seen.keyPanelHidden = await dash.locator("#key-panel").evaluate((n) => n.hidden);
  await dash.locator(`#runs tbody tr[data-id="${spec.attackRun}"]`).click();
  await dash.waitForFunction(() => /^image: /.test(document.querySelector("#caption").textContent));
  seen.attackCaption = await dash.locator("#caption").innerText();
  await dash.waitForFunction(() => document.querySelector("#record-json").textContent !== "");
  seen.attackRecord = await dash.locator("#record-json").textContent();
  seen.attackCanvas = await dash.locator("#image-canvas").evaluate((c) => [c.width, c.height]);
  seen.titleAfterAttack = await dash.title();
  await dash.screenshot({ path: path.join(spec.outDir, "dashboard-attack-run.png"), fullPage: true });

  // 3. a direct upload from this page (origin A) through the signed URL to the blob service (origin B)
  await dash.setInputFiles("#upload-file", spec.image);
  await dash.click("#upload");
  await dash.waitForFunction(() => ["completed", "failed", "refused"].includes(document.querySelector("#upload-result").dataset.status), null, { timeout: 150000 });
  seen.upload = await dash.locator("#upload-result").evaluate((n) => ({ status: n.dataset.status, id: n.dataset.id || null, text: n.textContent }));
  const row = dash.locator(`#runs tbody tr[data-id^="${seen.upload.id}"]`);
  if (seen.upload.id && await row.count()) {
    await row.first().click();
    await dash.waitForFunction(() => document.querySelector("#image-canvas").width > 10 && document.querySelectorAll("#tags .chip").length > 0);
    seen.uploadTags = await dash.locator("#tags .chip").allInnerTexts();
  }
  await dash.screenshot({ path: path.join(spec.outDir, "dashboard-uploaded.png"), fullPage: true });
  await ctx.close();
}

async function noCorsPhase(browser, seen) {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
  record(ctx, seen);
  const page = await ctx.newPage();
  watch(page, seen);
  page.setDefaultTimeout(30000);
  // a key in the query string is stripped and not used: the page asks for the key instead
  await page.goto(`${spec.base}/api/dashboard?status=Failed&code=${encodeURIComponent(spec.master)}`);
  await page.waitForSelector("#key-panel:not([hidden])");
  seen.urlAfterQueryKey = page.url();
  await page.fill("#key-input", spec.master);
  await page.click("#key-form button[type=submit]");
  await page.waitForSelector("#runs tbody tr[data-id]");
  seen.keyPanelHidden = await page.locator("#key-panel").evaluate((n) => n.hidden);
  seen.statusFilter = await page.locator("#status-filter").inputValue();
  await page.setInputFiles("#upload-file", spec.image);
  await page.click("#upload");
  await page.waitForFunction(() => ["completed", "failed", "refused"].includes(document.querySelector("#upload-result").dataset.status), null, { timeout: 60000 });
  seen.upload = await page.locator("#upload-result").evaluate((n) => ({ status: n.dataset.status, id: n.dataset.id || null, text: n.textContent }));
  await page.screenshot({ path: path.join(spec.outDir, "dashboard-upload-refused.png"), fullPage: true });
  await ctx.close();
}

(async () => {
  const browser = await chromium.launch({ executablePath: spec.chromium, headless: true, args: ["--no-sandbox"] });
  const seen = { consoleErrors: [], dialogs: [], requests: [], puts: [] };
  try {
    if (spec.phase === "attack") await attackPhase(browser, seen);
    else await noCorsPhase(browser, seen);
    process.stdout.write(JSON.stringify(seen));
  } catch (err) {
    process.stderr.write(`dashboard security driver failed: ${err && err.stack ? err.stack : err}\n${JSON.stringify(seen).slice(0, 6000)}\n`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
