// The official `openai` npm client against a running layerpool HTTP API.
// tests/http_api_test.py starts the cluster and runs this with
//   LAYERPOOL_BASE_URL (http://HOST:PORT/v1), LAYERPOOL_API_KEY, LAYERPOOL_MODEL
// and reads the closing "N passed, N failed" line.
import OpenAI from "openai";

const baseURL = process.env.LAYERPOOL_BASE_URL;
const apiKey = process.env.LAYERPOOL_API_KEY;
const model = process.env.LAYERPOOL_MODEL;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}
async function expectError(fn, status, what) {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof OpenAI.APIError, `${what}: not an APIError: ${e}`);
    assert(e.status === status, `${what}: status ${e.status}, want ${status}: ${e.message}`);
    return e;
  }
  throw new Error(`${what}: no error`);
}

const messages = [
  { role: "system", content: "You tell short stories." },
  { role: "user", content: "Tell me about a cat." },
];

await check("models lists the served model", async () => {
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  assert(ids.length === 1 && ids[0] === model, `models: ${JSON.stringify(ids)}`);
});

let chatText = "";
await check("chat completion", async () => {
  const r = await client.chat.completions.create({
    model, messages, max_tokens: 24, temperature: 0,
  });
  assert(r.object === "chat.completion", `object ${r.object}`);
  assert(r.choices.length === 1 && r.choices[0].message.role === "assistant", "one assistant choice");
  chatText = r.choices[0].message.content;
  assert(chatText.length > 0, "empty reply");
  assert(r.choices[0].finish_reason === "length" || r.choices[0].finish_reason === "stop",
         `finish_reason ${r.choices[0].finish_reason}`);
  assert(r.usage.completion_tokens > 0 && r.usage.prompt_tokens > 0 &&
         r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens,
         `usage ${JSON.stringify(r.usage)}`);
});

await check("streamed chat equals the non-streamed text at temperature 0", async () => {
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 24, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert(chunk.object === "chat.completion.chunk", `object ${chunk.object}`);
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta.content ?? "";
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert(text === chatText, `streamed ${JSON.stringify(text)} != ${JSON.stringify(chatText)}`);
  assert(finish !== null, "no finish_reason");
  assert(usage && usage.completion_tokens > 0, `usage ${JSON.stringify(usage)}`);
});

await check("text completion, and a stop string", async () => {
  const r = await client.completions.create({
    model, prompt: "Once upon a time", max_tokens: 16, temperature: 0,
  });
  assert(r.object === "text_completion", `object ${r.object}`);
  const text = r.choices[0].text;
  assert(text.length > 0, "empty completion");
  const word = text.trim().split(/\s+/)[1];
  const cut = await client.completions.create({
    model, prompt: "Once upon a time", max_tokens: 16, temperature: 0, stop: [word],
  });
  assert(cut.choices[0].finish_reason === "stop", `finish ${cut.choices[0].finish_reason}`);
  assert(text.startsWith(cut.choices[0].text) && !cut.choices[0].text.includes(word),
         `cut ${JSON.stringify(cut.choices[0].text)} of ${JSON.stringify(text)} at ${word}`);
});

await check("completion from token ids, logprobs", async () => {
  const r = await client.completions.create({
    model, prompt: [1, 100, 200], max_tokens: 4, temperature: 0, logprobs: 2,
  });
  assert(r.choices[0].logprobs.tokens.length === r.usage.completion_tokens, "one logprob a token");
  assert(r.choices[0].logprobs.token_logprobs.every((x) => x <= 0), "logprobs <= 0");
  const stream = await client.completions.create({
    model, prompt: [1, 100, 200], max_tokens: 4, temperature: 0, logprobs: 2, stream: true,
  });
  const streamed = [];
  for await (const chunk of stream) {
    const lp = chunk.choices[0].logprobs;
    if (lp) streamed.push(...lp.token_logprobs);
  }
  assert(JSON.stringify(streamed) === JSON.stringify(r.choices[0].logprobs.token_logprobs),
         `streamed logprobs ${streamed} != ${r.choices[0].logprobs.token_logprobs}`);
});

await check("embeddings: one unit vector per input, in order", async () => {
  // The SDK asks for base64 and decodes it: this checks that encoding too.
  const r = await client.embeddings.create({ model, input: ["Once upon a time", "The cat sat."] });
  assert(r.object === "list" && r.data.length === 2, `data ${r.data.length}`);
  assert(r.data[0].index === 0 && r.data[1].index === 1, "indices");
  for (const d of r.data) {
    const norm = Math.sqrt(d.embedding.reduce((a, x) => a + x * x, 0));
    assert(d.embedding.length === 128 && Math.abs(norm - 1) < 1e-5, `length ${d.embedding.length}, norm ${norm}`);
  }
  const one = await client.embeddings.create({ model, input: "The cat sat.", encoding_format: "float" });
  assert(JSON.stringify(Array.from(r.data[1].embedding)) === JSON.stringify(one.data[0].embedding),
         "the second of two equals the same input alone");
  assert(r.usage.prompt_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens, "usage");
});

await check("a wrong key is 401", async () => {
  const bad = new OpenAI({ baseURL, apiKey: "sk-wrong", maxRetries: 0 });
  await expectError(() => bad.models.list(), 401, "wrong key");
});

await check("an unknown model is 404", async () => {
  const e = await expectError(() => client.chat.completions.create({
    model: "gpt-4o", messages, max_tokens: 4 }), 404, "unknown model");
  assert(e.message.includes(model), `message names the served model: ${e.message}`);
});

await check("a prompt over the context is 400 with the numbers", async () => {
  const e = await expectError(() => client.completions.create({
    model, prompt: "word ".repeat(400), max_tokens: 400 }), 400, "over the context");
  assert(e.code === "context_length_exceeded", `code ${e.code}`);
  assert(/\d+ tokens/.test(e.message), e.message);
});

await check("a bad field is 400 naming it", async () => {
  const e = await expectError(() => client.chat.completions.create({
    model, messages, n: 3 }), 400, "n=3");
  assert(e.param === "n", `param ${e.param}`);
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
