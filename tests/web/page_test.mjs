// layerpool's web page in Debian's chromium, driven by playwright-core,
// against a running cluster (tests/web_page_test.py starts it and reads the
// last line, "N passed, N failed").
//
// Environment: LAYERPOOL_BASE_URL (http://host:port), LAYERPOOL_KILL_PID
// (stage 1's worker, killed at the end), CHROMIUM (executable),
// LAYERPOOL_SCREENSHOTS (a folder for the README's screenshots; optional).
import { chromium } from "playwright-core";
import path from "node:path";

const base = process.env.LAYERPOOL_BASE_URL;
const killPid = Number(process.env.LAYERPOOL_KILL_PID);
const shots = process.env.LAYERPOOL_SCREENSHOTS || "";
let passed = 0, failed = 0;
function check(name, ok, detail = "") {
  if (ok) ++passed; else ++failed;
  console.log((ok ? "ok   " : "FAIL ") + name + (ok ? "" : ": " + detail));
}
async function api(pathname, body) {
  const r = await fetch(base + pathname, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  return r.json();
}
async function until(what, fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return null;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
         "--disable-default-apps", "--disable-sync", "--no-first-run"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
const consoleErrors = [];
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push(String(e)));
const sent = [];
page.on("request", (r) => {
  if (r.url().endsWith("/v1/chat/completions")) sent.push(JSON.parse(r.postData() || "{}"));
});

try {
  await page.goto(base + "/");
  const status = await api("/status");

  // The pipeline view: one box per stage, in order, with its layers.
  const boxes = await until("stages", async () => {
    const n = await page.locator("#stages li.stage").count();
    return n === status.stages.length ? n : 0;
  }, 5000);
  check("the pipeline view shows every stage", boxes === status.stages.length,
        `${boxes} boxes for ${status.stages.length} stages`);
  for (const st of status.stages) {
    const text = await page.locator("#stages li.stage").nth(st.index).textContent();
    check(`stage ${st.index}'s box names its layers and worker`,
          text.includes(`layers ${st.layers[0]}–${st.layers[1]}`) && text.includes(st.worker), text);
  }

  // Settings reach the request; the streamed reply equals the API's.
  for (const [key, value] of [["temperature", "0"], ["max_tokens", "24"], ["top_k", "7"]]) {
    await page.fill(`#set-${key}`, value);
    await page.locator(`#set-${key}`).dispatchEvent("change");
  }
  await page.fill("#input", "Tell me about the little dog.");
  await page.press("#input", "Enter");
  await until("reply", async () => (await page.locator("#send").isVisible()) &&
                                   (await page.locator(".message.assistant").count()) === 1, 60000);
  const stored = await page.evaluate(() => JSON.parse(localStorage.getItem("layerpool.conversations")));
  const reply = stored[0].messages.find((m) => m.role === "assistant");
  const request = sent[0] || {};
  check("the sampling settings reach the request",
        request.temperature === 0 && request.max_tokens === 24 && request.top_k === 7 &&
        request.stream === true, JSON.stringify(request));
  const direct = await api("/v1/chat/completions", {
    model: status.model, messages: [{ role: "user", content: "Tell me about the little dog." }],
    temperature: 0, max_tokens: 24, top_k: 7 });
  const want = direct.choices ? direct.choices[0].message.content : JSON.stringify(direct);
  check("the streamed reply equals the API's reply at temperature 0",
        reply && reply.content === want && want.length > 0, `${JSON.stringify(reply)} vs ${want}`);
  const shown = await page.locator(".message.assistant .body").textContent();
  check("the reply is on the page", shown.replace(/\s+/g, "") === want.replace(/\s+/g, ""), shown);

  // Shift+Enter is a new line, not a send; Regenerate redoes the reply
  // (the same one at temperature 0) in place.
  await page.fill("#input", "first line");
  await page.press("#input", "Shift+Enter");
  const multiline = await page.inputValue("#input");
  check("Shift+Enter adds a new line and sends nothing",
        multiline === "first line\n" && sent.length === 1, JSON.stringify(multiline));
  await page.fill("#input", "");
  await page.click("#regenerate");
  await until("regenerated", async () => sent.length === 2 && await page.locator("#send").isVisible(),
              60000);
  const again = (await page.evaluate(() =>
    JSON.parse(localStorage.getItem("layerpool.conversations"))))[0].messages;
  check("Regenerate replaces the last reply (the same one at temperature 0)",
        again.length === 2 && again[1].content === want, JSON.stringify(again));

  // Screenshots for the README: chat and pipeline, light and dark.
  if (shots) {
    await page.evaluate(() => {
      document.querySelector(".side").scrollTop = 0;
      document.activeElement.blur();
      document.documentElement.dataset.theme = "light";
    });
    await page.screenshot({ path: path.join(shots, "page-light.png") });
    await page.evaluate(() => { document.documentElement.dataset.theme = "dark"; });
    await page.screenshot({ path: path.join(shots, "page-dark.png") });
    await page.evaluate(() => { document.documentElement.dataset.theme = "light"; });
  }

  // Model output is text, never markup.
  await page.evaluate(() => {
    const c = JSON.parse(localStorage.getItem("layerpool.conversations"));
    c[0].messages.push({ role: "assistant", content: "<img src=x onerror=alert(1)> **bold** `code`" });
    localStorage.setItem("layerpool.conversations", JSON.stringify(c));
  });
  await page.reload();
  const injected = await page.locator(".message.assistant img").count();
  const bold = await page.locator(".message.assistant strong").count();
  check("markdown renders and HTML from the model does not", injected === 0 && bold === 1,
        `${injected} img, ${bold} strong`);

  // Stop really stops: the stream ends and the stages free the sequence.
  await page.fill("#set-max_tokens", "1500");
  await page.locator("#set-max_tokens").dispatchEvent("change");
  await page.fill("#input", "Once upon a time");
  await page.press("#input", "Enter");
  // Stop as soon as the reply starts (1,500 tokens would run for seconds).
  await page.locator("#stop").waitFor({ state: "visible", timeout: 10000 });
  await page.click("#stop", { timeout: 5000 });
  const freed = await until("freed", async () => {
    const s = await api("/status");
    return s.active_sequences === 0 && s.stages.every((st) => st.active_sequences === 0) ? s : null;
  }, 5000);
  const stopped = (await page.evaluate(() =>
    JSON.parse(localStorage.getItem("layerpool.conversations"))))[0].messages;
  const partial = stopped[stopped.length - 1];
  check("Stop ends the stream and the stages free its sequence within 5 s", freed !== null &&
        await page.locator("#send").isVisible(), JSON.stringify(freed));
  check("the stopped reply is kept, cut short",
        partial.role !== "assistant" || partial.content.length < 1500 * 3, partial.content.length);

  // Regenerate and edit-last.
  const before = (await page.evaluate(() =>
    JSON.parse(localStorage.getItem("layerpool.conversations"))))[0].messages.length;
  await page.click("#edit-last");
  const edited = await page.inputValue("#input");
  check("Edit last puts the last message back in the box", edited === "Once upon a time", edited);
  await page.fill("#input", "");

  // A phone-width window has no sideways scrolling.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  check("readable at phone width (no horizontal overflow)", overflow <= 390, `${overflow}px`);
  await page.setViewportSize({ width: 1280, height: 800 });
  check("conversations are kept in the browser", before >= 3, `${before} messages`);

  // A stage whose worker dies turns red, with the reason, within 5 s.
  process.kill(killPid, "SIGKILL");
  const killedAt = Date.now();
  const red = await until("red", async () =>
    (await page.locator("#stages li.stage.down").count()) > 0, 5000);
  const reason = red ? await page.locator("#stages li.stage.down .reason").first().textContent() : "";
  check(`a dead worker's stage turns red with the reason (${Date.now() - killedAt} ms)`,
        red && /stage 1/.test(reason), reason);
  check("no console errors", consoleErrors.length === 0, consoleErrors.join(" | "));
} catch (e) {
  const error = await page.locator("#error").textContent().catch(() => "");
  const last = await page.evaluate(() => {
    const c = JSON.parse(localStorage.getItem("layerpool.conversations") || "[]");
    return c.length ? c[0].messages.map((m) => m.role + ":" + m.content.length) : [];
  }).catch(() => []);
  check("the page test ran to the end", false,
        `${e.message.split("\n")[0]} (page error: ${error}; messages ${last})`);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
