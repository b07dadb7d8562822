// layerpool's page: chat over /v1/chat/completions (SSE), conversations in
// localStorage, sampling settings, and the pipeline view polled from
// /status once a second. Plain JavaScript, no dependencies, nothing fetched
// from anywhere but this server.
"use strict";

const $ = (id) => document.getElementById(id);
const store = {
  get(key, fallback) {
    try {
      const v = localStorage.getItem("layerpool." + key);
      return v === null ? fallback : JSON.parse(v);
    } catch (e) {
      return fallback;
    }
  },
  set(key, value) { localStorage.setItem("layerpool." + key, JSON.stringify(value)); },
};

// ------------------------------------------------------------ settings

// Named as the OpenAI API and llama.cpp's server name them; defaults are
// llama.cpp's. `send: false` leaves the field out of the request.
const SETTINGS = [
  { key: "temperature", label: "Temperature", def: 0.8, step: 0.05, min: 0 },
  { key: "top_p", label: "Top P", def: 0.95, step: 0.01, min: 0, max: 1 },
  { key: "top_k", label: "Top K (0: off)", def: 40, step: 1, min: 0 },
  { key: "min_p", label: "Min P", def: 0.05, step: 0.01, min: 0, max: 1 },
  { key: "typical_p", label: "Typical P", def: 1, step: 0.01, min: 0, max: 1 },
  { key: "tfs_z", label: "Tail-free Z", def: 1, step: 0.01, min: 0, max: 1 },
  { key: "repeat_penalty", label: "Repetition penalty", def: 1, step: 0.01, min: 0.01 },
  { key: "repeat_last_n", label: "Penalty range (tokens)", def: 64, step: 1, min: -1 },
  { key: "frequency_penalty", label: "Frequency penalty", def: 0, step: 0.05 },
  { key: "presence_penalty", label: "Presence penalty", def: 0, step: 0.05 },
  { key: "max_tokens", label: "Max new tokens", def: 256, step: 1, min: 1 },
  { key: "seed", label: "Seed (-1: random)", def: -1, step: 1, min: -1 },
  { key: "stop", label: "Stop strings (one per line)", def: "", text: true },
];

let settings = Object.assign(
  Object.fromEntries(SETTINGS.map((s) => [s.key, s.def])), store.get("settings", {}));

function renderSettings() {
  const form = $("settings");
  form.replaceChildren();
  for (const s of SETTINGS) {
    const label = document.createElement("label");
    label.htmlFor = "set-" + s.key;
    label.textContent = s.label;
    const input = document.createElement(s.text ? "textarea" : "input");
    input.id = "set-" + s.key;
    input.name = s.key;
    if (s.text) {
      input.rows = 2;
      label.className = input.className = "wide";
    } else {
      input.type = "number";
      input.step = s.step;
      if (s.min !== undefined) input.min = s.min;
      if (s.max !== undefined) input.max = s.max;
    }
    input.value = settings[s.key];
    input.addEventListener("change", () => {
      settings[s.key] = s.text ? input.value : Number(input.value);
      store.set("settings", settings);
    });
    form.append(label, input);
  }
}

function samplingFields() {
  const out = {};
  for (const s of SETTINGS) {
    const v = settings[s.key];
    if (s.key === "stop") {
      const stops = String(v).split("\n").filter((x) => x.length > 0);
      if (stops.length > 0) out.stop = stops.slice(0, 4);
    } else if (s.key === "seed") {
      if (Number(v) >= 0) out.seed = Number(v);
    } else if (v !== "" && Number.isFinite(Number(v))) {
      out[s.key] = Number(v);
    }
  }
  return out;
}

// ------------------------------------------------------------ markdown

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// Model output is untrusted: everything is escaped first, and only the
// tags made here (p, pre, code, strong, em, br) ever reach the page.
function renderMarkdown(text) {
  const parts = text.split(/```/);
  let html = "";
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      const newline = part.indexOf("\n");
      const code = newline >= 0 && /^[\w+-]*$/.test(part.slice(0, newline)) ? part.slice(newline + 1) : part;
      html += "<pre><code>" + escapeHtml(code) + "</code></pre>";
      return;
    }
    for (const para of part.split(/\n{2,}/)) {
      if (para.trim() === "") continue;
      let p = escapeHtml(para);
      p = p.replace(/`([^`\n]+)`/g, "<code>$1</code>");
      p = p.replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>");
      p = p.replace(/(^|[^*])\*([^*\n]+)\*/g, "$1<em>$2</em>");
      html += "<p>" + p + "</p>";
    }
  });
  return html;
}

// ------------------------------------------------------------ conversations

let conversations = store.get("conversations", []);
let current = store.get("current", null);
let streaming = null;  // {controller} while a reply streams

function conversation() {
  let c = conversations.find((x) => x.id === current);
  if (!c) {
    c = { id: String(Date.now()) + Math.random().toString(16).slice(2, 6), title: "New chat",
          system: "", messages: [], created: new Date().toISOString() };
    conversations.unshift(c);
    current = c.id;
  }
  return c;
}

function save() {
  store.set("conversations", conversations);
  store.set("current", current);
}

function renderConversations() {
  const list = $("conversation-list");
  list.replaceChildren();
  for (const c of conversations) {
    const li = document.createElement("li");
    if (c.id === current) li.className = "current";
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open";
    open.textContent = c.title;
    open.title = c.title;
    open.addEventListener("click", () => {
      if (streaming) return;
      current = c.id;
      save();
      render();
    });
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "×";
    del.setAttribute("aria-label", "Delete " + c.title);
    del.addEventListener("click", () => {
      if (streaming) return;
      conversations = conversations.filter((x) => x.id !== c.id);
      if (current === c.id) current = conversations.length ? conversations[0].id : null;
      save();
      render();
    });
    li.append(open, del);
    list.append(li);
  }
}

function messageElement(m, index) {
  const div = document.createElement("div");
  div.className = "message " + m.role;
  div.dataset.index = index;
  const role = document.createElement("div");
  role.className = "role";
  const name = document.createElement("span");
  name.textContent = m.role === "user" ? "You" : "Assistant";
  const copy = document.createElement("button");
  copy.type = "button";
  copy.textContent = "Copy";
  copy.addEventListener("click", () => {
    if (navigator.clipboard) navigator.clipboard.writeText(m.content).catch(() => {});
  });
  role.append(name, copy);
  const body = document.createElement("div");
  body.className = "body";
  body.innerHTML = renderMarkdown(m.content);
  div.append(role, body);
  return div;
}

function renderMessages() {
  const c = conversation();
  const box = $("messages");
  box.replaceChildren(...c.messages.map(messageElement));
  box.scrollTop = box.scrollHeight;
}

function render() {
  const c = conversation();
  $("system").value = c.system || "";
  renderConversations();
  renderMessages();
}

function showError(text) {
  const e = $("error");
  e.textContent = text;
  e.hidden = !text;
}

// ------------------------------------------------------------ chat

let modelId = null;

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = store.get("apiKey", "");
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return (body.error && body.error.message) || response.statusText;
  } catch (e) {
    return response.status + " " + response.statusText;
  }
}

async function loadModel() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    if (!r.ok) {
      showError(await errorText(r));
      return;
    }
    const body = await r.json();
    modelId = body.data && body.data.length ? body.data[0].id : null;
    $("model").textContent = modelId || "no model";
  } catch (e) {
    showError("cannot reach the server: " + e.message);
  }
}

function setStreaming(on) {
  $("send").hidden = on;
  $("stop").hidden = !on;
  for (const id of ["regenerate", "edit-last", "new-chat"]) $(id).disabled = on;
}

// Streams the assistant's reply to the conversation's messages so far.
async function complete() {
  const c = conversation();
  const messages = [];
  if (c.system.trim()) messages.push({ role: "system", content: c.system });
  for (const m of c.messages) messages.push({ role: m.role, content: m.content });
  const reply = { role: "assistant", content: "" };
  c.messages.push(reply);
  renderMessages();
  const bodyElement = $("messages").lastElementChild.querySelector(".body");
  const controller = new AbortController();
  streaming = { controller };
  setStreaming(true);
  showError("");
  try {
    if (!modelId) await loadModel();
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(),
      signal: controller.signal,
      body: JSON.stringify(Object.assign(
        { model: modelId, messages, stream: true }, samplingFields())),
    });
    if (!response.ok) throw new Error(await errorText(response));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      let end;
      while ((end = pending.indexOf("\n\n")) >= 0) {
        const event = pending.slice(0, end);
        pending = pending.slice(end + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
          if (delta && delta.content) {
            reply.content += delta.content;
            bodyElement.innerHTML = renderMarkdown(reply.content);
            $("messages").scrollTop = $("messages").scrollHeight;
          }
        }
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") showError(e.message);
  } finally {
    streaming = null;
    setStreaming(false);
    if (reply.content === "") c.messages.pop();
    save();
    renderMessages();
  }
}

function send() {
  const text = $("input").value;
  if (streaming || text.trim() === "") return;
  const c = conversation();
  c.messages.push({ role: "user", content: text });
  if (c.title === "New chat") c.title = text.slice(0, 40);
  $("input").value = "";
  save();
  renderConversations();
  complete();
}

function lastUserIndex(c) {
  for (let i = c.messages.length - 1; i >= 0; --i) if (c.messages[i].role === "user") return i;
  return -1;
}

function regenerate() {
  const c = conversation();
  const i = lastUserIndex(c);
  if (streaming || i < 0) return;
  c.messages.length = i + 1;
  complete();
}

function editLast() {
  const c = conversation();
  const i = lastUserIndex(c);
  if (streaming || i < 0) return;
  $("input").value = c.messages[i].content;
  c.messages.length = i;
  save();
  renderMessages();
  $("input").focus();
}

function exportJson() {
  const c = conversation();
  const blob = new Blob([JSON.stringify(c, null, 2)], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "layerpool-chat-" + c.id + ".json";
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// ------------------------------------------------------------ pipeline view

function bytes(n) {
  if (!(n > 0)) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; ++u; }
  return n.toFixed(n < 10 && u > 0 ? 1 : 0) + " " + units[u];
}

let previous = null;  // {time, generated, processed: [per stage]}

// Appends a <keyTag>name</keyTag><valueTag>value</valueTag> pair per row,
// as text.
function appendPairs(parent, rows, keyTag, valueTag) {
  for (const [k, v] of rows) {
    const a = document.createElement(keyTag);
    a.textContent = k;
    const b = document.createElement(valueTag);
    b.textContent = v;
    parent.append(a, b);
  }
}

function renderStatus(s) {
  const now = performance.now();
  const dt = previous ? (now - previous.time) / 1000 : 0;
  const health = $("health");
  health.textContent = s.status;
  health.className = "health " + (s.status === "ready" ? "ready" : "down");
  if (s.model && !modelId) $("model").textContent = s.model;
  const tps = (count, before) => (dt > 0 && before !== undefined ? Math.max(0, (count - before) / dt) : 0);

  const totals = $("totals");
  totals.replaceChildren();
  const rows = [
    ["Requests in flight", s.requests_in_flight],
    ["Queued", s.queued_requests === undefined ? "–" : s.queued_requests],
    ["Tokens/s (generated)", tps(s.generated_tokens, previous && previous.generated).toFixed(1)],
    ["Time to first token (mean)", s.mean_time_to_first_token_s > 0
      ? (s.mean_time_to_first_token_s * 1000).toFixed(0) + " ms" : "–"],
  ];
  appendPairs(totals, rows, "span", "span");

  const list = $("stages");
  list.replaceChildren();
  (s.stages || []).forEach((st, i) => {
    const li = document.createElement("li");
    li.className = "stage" + (st.state === "down" ? " down" : "");
    li.dataset.state = st.state;
    const title = document.createElement("div");
    title.className = "title";
    const name = document.createElement("span");
    name.textContent = `Stage ${st.index} · layers ${st.layers[0]}–${st.layers[1]}`;
    const state = document.createElement("span");
    state.textContent = st.state;
    title.append(name, state);
    const dl = document.createElement("dl");
    const processed = previous && previous.processed ? previous.processed[i] : undefined;
    const items = [
      ["Worker", st.worker],
      ["Device", st.device],
      ["Busy", st.busy_fraction !== undefined ? (st.busy_fraction * 100).toFixed(0) + "%" : "–"],
      ["Tokens/s", st.tokens_processed !== undefined ? tps(st.tokens_processed, processed).toFixed(1) : "–"],
      ["Hop to next", i + 1 === s.stages.length ? "(last stage)"
        : st.hop_us !== undefined ? st.hop_us.toFixed(0) + " µs" : "–"],
      ["Link", st.link_to_next || "results"],
      ["Queue", st.queue_depth !== undefined ? st.queue_depth : "–"],
      ["KV cells", st.kv_cells_total ? `${st.kv_cells_used} / ${st.kv_cells_total}` : "–"],
    ];
    appendPairs(dl, items, "dt", "dd");
    const total = st.weight_bytes + st.kv_cache_bytes + st.memory_free_bytes;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.title = `weights ${bytes(st.weight_bytes)}, KV cache ${bytes(st.kv_cache_bytes)}, free ${bytes(st.memory_free_bytes)}`;
    for (const [cls, n] of [["weights", st.weight_bytes], ["kv", st.kv_cache_bytes]]) {
      const seg = document.createElement("span");
      seg.className = cls;
      seg.style.width = (total > 0 ? (100 * n) / total : 0) + "%";
      bar.append(seg);
    }
    const legend = document.createElement("div");
    legend.className = "legend";
    for (const [cls, label, n] of [["weights", "weights", st.weight_bytes],
                                   ["kv", "KV", st.kv_cache_bytes],
                                   ["free", "free", st.memory_free_bytes]]) {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.className = cls;
      item.append(swatch, `${label} ${bytes(n)}`);
      legend.append(item);
    }
    li.append(title, dl, bar, legend);
    if (st.reason) {
      const reason = document.createElement("div");
      reason.className = "reason";
      reason.textContent = st.reason;
      li.append(reason);
    }
    list.append(li);
  });
  previous = { time: now, generated: s.generated_tokens,
               processed: (s.stages || []).map((st) => st.tokens_processed) };
}

async function pollStatus() {
  try {
    const r = await fetch("/status", { headers: headers() });
    if (r.ok) {
      renderStatus(await r.json());
    } else {
      $("health").textContent = r.status === 401 ? "needs API key" : "error " + r.status;
      $("health").className = "health down";
    }
  } catch (e) {
    $("health").textContent = "unreachable";
    $("health").className = "health down";
  }
  setTimeout(pollStatus, 1000);
}

// ------------------------------------------------------------ start

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
}

function start() {
  const dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  applyTheme(store.get("theme", dark ? "dark" : "light"));
  $("theme-button").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    store.set("theme", next);
    applyTheme(next);
  });
  $("key-button").addEventListener("click", () => {
    const key = window.prompt("API key (empty: none)", store.get("apiKey", ""));
    if (key !== null) {
      store.set("apiKey", key.trim());
      loadModel();
    }
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  $("stop").addEventListener("click", () => {
    if (streaming) streaming.controller.abort();
  });
  $("regenerate").addEventListener("click", regenerate);
  $("edit-last").addEventListener("click", editLast);
  $("export").addEventListener("click", exportJson);
  $("new-chat").addEventListener("click", () => {
    current = null;
    conversation();
    save();
    render();
    $("input").focus();
  });
  $("system").addEventListener("change", () => {
    conversation().system = $("system").value;
    save();
  });
  $("reset-settings").addEventListener("click", () => {
    settings = Object.fromEntries(SETTINGS.map((s) => [s.key, s.def]));
    store.set("settings", settings);
    renderSettings();
  });
  renderSettings();
  render();
  loadModel();
  pollStatus();
}

document.addEventListener("DOMContentLoaded", start);
