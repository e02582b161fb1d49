// The Vercel AI SDK as a user writes it: `createOpenAI` pointed at the proxy, whose default
// `openai(id)` speaks the Responses API. generateText, streamText, and a tool the SDK runs
// itself between steps until the model answers with its result. The Makefile runs the suite
// once per CODEX_BACKEND (server.mjs starts the proxy). ai 7, the newest, declares Node 22 or
// newer as openai 7 does: on Node 20 npm ci warns EBADENGINE, and both work (ai 6, which
// declares Node 18, passes this file as well).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createOpenAI } from "@ai-sdk/openai";
import { APICallError, generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

import { startProxy } from "./server.mjs";

const API_KEY = "ai-sdk-key";
let server;
let openai;

before(async () => {
  server = await startProxy(API_KEY);
  openai = createOpenAI({ baseURL: server.baseURL, apiKey: API_KEY });
});

after(() => server?.stop());

/** A weather tool that records the cities it was run for. */
function weatherTool(cities) {
  return tool({
    description: "Current weather for a city",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      cities.push(city);
      return `18 C and sunny in ${city}`;
    },
  });
}

test("generateText answers with the text, reasoning and usage of a Responses API response", async () => {
  const result = await generateText({ model: openai("codex-local"), prompt: "say hi [[reasoning]]" });
  assert.equal(result.text, "Reasoned answer from the mock model.");
  assert.equal(result.reasoningText, "**Thinking** about the mock question before answering.");
  assert.equal(result.finishReason, "stop");
  assert.match(result.response.id, /^resp_/);
  assert.equal(result.response.modelId, "codex-local");
  assert.equal(result.usage.inputTokens, 120);
  assert.equal(result.usage.outputTokens, 19);
  assert.equal(result.usage.totalTokens, 139);
});

test("streamText's chunks join to the answer", async () => {
  const result = streamText({ model: openai("codex-local"), prompt: "say hi [[multi]]" });
  const chunks = [];
  for await (const chunk of result.textStream) chunks.push(chunk);
  // exec prints each message whole, app-server streams them in small deltas.
  assert.ok(chunks.length >= 2, JSON.stringify(chunks));
  assert.equal(chunks.join(""), "First message.\n\nSecond message.");
  assert.equal(await result.finishReason, "stop");
});

test("generateText runs the tool and answers with its result", async () => {
  const cities = [];
  const result = await generateText({
    model: openai("codex-local"),
    prompt: "What is the weather in Paris? [[tool_flow]]",
    tools: { get_weather: weatherTool(cities) },
    stopWhen: stepCountIs(3),
  });
  assert.deepEqual(cities, ["Paris"]);
  assert.equal(result.steps.length, 2);
  assert.equal(result.steps[0].finishReason, "tool-calls");
  assert.deepEqual(
    result.steps[0].toolCalls.map((call) => [call.toolName, call.input]),
    [["get_weather", { city: "Paris" }]],
  );
  assert.equal(result.finishReason, "stop");
  assert.equal(result.text, "The tool says: 18 C and sunny in Paris");
});

test("streamText runs the tool and streams the answer with its result", async () => {
  const cities = [];
  const result = streamText({
    model: openai("codex-local"),
    prompt: "What is the weather in Paris? [[tool_flow]]",
    tools: { get_weather: weatherTool(cities) },
    stopWhen: stepCountIs(3),
  });
  let streamed = "";
  for await (const chunk of result.textStream) streamed += chunk;
  // exec's model writes a line before its call ("Let me look that up."), app-server's calls alone.
  assert.ok(streamed.endsWith("The tool says: 18 C and sunny in Paris"), streamed);
  assert.deepEqual(cities, ["Paris"]);
  assert.equal((await result.steps).length, 2);
  assert.equal(await result.text, "The tool says: 18 C and sunny in Paris");
});

test("a wrong key is a 401 APICallError", async () => {
  const wrong = createOpenAI({ baseURL: server.baseURL, apiKey: "wrong" });
  await assert.rejects(
    generateText({ model: wrong("codex-local"), prompt: "hi", maxRetries: 0 }),
    (err) => APICallError.isInstance(err) && err.statusCode === 401,
  );
});
