// Drives modeld's OpenAI-compatible routes with the official `openai` npm package and
// prints what it got as one JSON object on stdout (tests/e2e/test_openai_client.py checks
// it). usage: node client.mjs BASE_URL MODEL PROMPT
import OpenAI from "openai";

const [baseURL, model, prompt] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 60000 });
const out = {};

const list = await client.models.list();
out.models = list.data.map((m) => m.id);

const completion = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0 });
out.completion = { text: completion.choices[0].text, finish_reason: completion.choices[0].finish_reason, usage: completion.usage };

let text = "";
let finish = null;
for await (const chunk of await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0, stream: true })) {
  text += chunk.choices[0]?.text ?? "";
  finish = chunk.choices[0]?.finish_reason ?? finish;
}
out.completion_stream = { text, finish_reason: finish };

const messages = [{ role: "user", content: prompt }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0 });
out.chat = { content: chat.choices[0].message.content, role: chat.choices[0].message.role,
             finish_reason: chat.choices[0].finish_reason, usage: chat.usage };

let content = "";
let usage = null;
let role = null;
finish = null;
const stream = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0, stream: true,
                                                      stream_options: { include_usage: true } });
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  const c = chunk.choices[0];
  if (!c) continue;
  role = c.delta?.role ?? role;
  content += c.delta?.content ?? "";
  finish = c.finish_reason ?? finish;
}
out.chat_stream = { content, role, finish_reason: finish, usage };

try {
  await client.completions.create({ model: "no-such-model", prompt, max_tokens: 2 });
  out.error = null;
} catch (e) {
  out.error = { status: e.status, message: e.error?.message ?? e.message };
}
console.log(JSON.stringify(out));
