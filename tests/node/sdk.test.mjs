// The official OpenAI Node SDK against the proxy on fake-codex: plain, streamed, tools, responses.
// The Makefile runs the suite once per CODEX_BACKEND (server.mjs starts the proxy).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";

import { startProxy } from "./server.mjs";

const API_KEY = "node-sdk-key";
let server;
let client;

before(async () => {
  server = await startProxy(API_KEY);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: API_KEY, maxRetries: 0 });
});

after(() => server?.stop());

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

test("a plain completion with usage", async () => {
  const reply = await client.chat.completions.create({
    model: "codex-local",
    messages: [{ role: "user", content: "say hi [[reasoning]]" }],
  });
  assert.equal(reply.choices[0].message.content, "Reasoned answer from the mock model.");
  assert.equal(reply.choices[0].finish_reason, "stop");
  assert.equal(reply.usage.total_tokens, 139);
});

test("a streamed completion with include_usage", async () => {
  const stream = await client.chat.completions.create({
    model: "codex-local",
    messages: [{ role: "user", content: "say hi [[multi]]" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  const finishes = [];
  let usage;
  for await (const chunk of stream) {
    if (chunk.choices.length) {
      text += chunk.choices[0].delta.content ?? "";
      if (chunk.choices[0].finish_reason) finishes.push(chunk.choices[0].finish_reason);
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, "First message.\n\nSecond message.");
  assert.deepEqual(finishes, ["stop"]);
  assert.equal(usage.total_tokens, 134);
});

test("tool calls, plain and streamed by index", async () => {
  const reply = await client.chat.completions.create({
    model: "codex-local",
    messages: [{ role: "user", content: "Weather? [[tool_flow:2]]" }],
    tools: [weather],
  });
  assert.equal(reply.choices[0].finish_reason, "tool_calls");
  assert.deepEqual(
    reply.choices[0].message.tool_calls.map((c) => JSON.parse(c.function.arguments).city),
    ["Paris", "Rome"],
  );

  const stream = await client.chat.completions.create({
    model: "codex-local",
    messages: [{ role: "user", content: "Weather? [[tool_flow:2]]" }],
    tools: [weather],
    stream: true,
  });
  const calls = [];
  for await (const chunk of stream) {
    for (const piece of chunk.choices[0]?.delta?.tool_calls ?? []) {
      calls[piece.index] ??= { name: "", arguments: "" };
      calls[piece.index].name += piece.function?.name ?? "";
      calls[piece.index].arguments += piece.function?.arguments ?? "";
    }
  }
  assert.deepEqual(calls.map((c) => [c.name, JSON.parse(c.arguments).city]), [
    ["get_weather", "Paris"],
    ["get_weather", "Rome"],
  ]);
});

test("responses, plain, streamed and continued", async () => {
  const reply = await client.responses.create({ model: "codex-local", input: "think [[reasoning]]" });
  assert.equal(reply.status, "completed");
  assert.equal(reply.output_text, "Reasoned answer from the mock model.");

  const stream = await client.responses.create({ model: "codex-local", input: "hi", stream: true });
  const kinds = [];
  let text = "";
  for await (const event of stream) {
    kinds.push(event.type);
    if (event.type === "response.output_text.delta") text += event.delta;
  }
  assert.equal(kinds[0], "response.created");
  assert.equal(kinds.at(-1), "response.completed");
  assert.equal(text, "Hello from the mock model.");

  const follow = await client.responses.create({
    model: "codex-local",
    input: "again",
    previous_response_id: reply.id,
  });
  assert.equal(follow.previous_response_id, reply.id);
  assert.equal((await client.responses.retrieve(follow.id)).id, follow.id);
});

test("a wrong key is an AuthenticationError", async () => {
  const bad = new OpenAI({ baseURL: client.baseURL, apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(bad.models.list(), (err) => err instanceof OpenAI.AuthenticationError);
});
