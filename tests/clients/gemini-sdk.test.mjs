// Google's official @google/genai SDK against gyre's Gemini client dialect
// (POST /v1beta/models/{model}:generateContent and :streamGenerateContent?alt=sse),
// with gyre-mock as the provider behind a route of each kind: openai, azure,
// anthropic, gemini and bedrock.  Every kind is translated (the request to gyre's pivot and on to
// the provider's API; the answer back to a GenerateContentResponse).  The mock
// answers "Mock reply to: " + the last message's text, or a call to the first
// tool when tools are given (docs/mock.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI, Type } from '@google/genai';
import { startGyre, startMock, SLOW } from '../lib/harness.mjs';

let mock, gyre, ai, authed;

const CLIENT_KEY = 'gyre-client-key-for-gemini';
const KINDS = {
  openai: { route: 'via-openai', model: 'gpt-4o-mini' },
  azure: { route: 'via-azure', model: 'gyre-deployment' },
  anthropic: { route: 'via-anthropic', model: 'claude-mock' },
  gemini: { route: 'via-gemini', model: 'gemini-mock' },
  bedrock: { route: 'via-bedrock', model: 'anthropic.claude-mock-v1:0' },
};

const WEATHER = {
  name: 'get_weather',
  description: 'The current weather in a city',
  parameters: { type: Type.OBJECT, properties: { city: { type: Type.STRING } }, required: ['city'] },
};

const providers = (mock) => `providers:
  - {name: p-openai, kind: openai, base_url: "${mock.v1}", keys: [sk-openai-gyre]}
  - {name: p-anthropic, kind: anthropic, base_url: "${mock.v1}", keys: [sk-ant-gyre]}
  - {name: p-gemini, kind: gemini, base_url: "${mock.url}/v1beta", keys: [gemini-key-gyre]}
  - {name: p-azure, kind: azure, base_url: "${mock.url}", keys: [azure-key-gyre]}
  - {name: p-bedrock, kind: bedrock, base_url: "${mock.url}", region: us-west-2, keys: ["AKIDGYREMOCK:gyre-mock-secret"]}
routes:
${Object.values(KINDS).map((k) => `  - {name: ${k.route}, targets: [{provider: p-${k.route.slice(4)}, model: "${k.model}"}]}`).join('\n')}
`;

const sdk = (url, apiKey) => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: url, timeout: 10000 * SLOW } });

before(async () => {
  mock = await startMock();
  gyre = await startGyre(`workers: 1\n${providers(mock)}`);
  ai = sdk(gyre.url, 'sdk-key-not-forwarded');
  authed = await startGyre(`workers: 1\nauth:\n  keys: [${CLIENT_KEY}]\n${providers(mock)}`);
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await authed.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
});

const lastSeen = async () => (await mock.stats()).last_request;

for (const [kind, { route, model }] of Object.entries(KINDS)) {
  test(`${kind}: models.generateContent answers a GenerateContentResponse with text, STOP and usage`, async () => {
    const r = await ai.models.generateContent({
      model: route,
      contents: 'What is two plus two?',
      config: { systemInstruction: 'Be brief.', temperature: 0.5, maxOutputTokens: 100 },
    });
    assert.equal(r.text, 'Mock reply to: What is two plus two?');
    assert.equal(r.candidates.length, 1);
    assert.equal(r.candidates[0].finishReason, 'STOP');
    assert.equal(r.candidates[0].content.role, 'model');
    assert.equal(r.modelVersion, model);
    assert.equal(typeof r.responseId, 'string');
    const u = r.usageMetadata;
    assert.equal(u.candidatesTokenCount, 8);
    assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount);
    assert.ok(u.promptTokenCount > 0);
    // What reached the provider: the system instruction and the user's text, in the provider's own API.
    const seen = await lastSeen();
    assert.match(seen.body, /Be brief\./);
    assert.match(seen.body, /What is two plus two\?/);
    const key = { openai: ['authorization', 'Bearer sk-openai-gyre'], azure: ['api-key', 'azure-key-gyre'],
      anthropic: ['x-api-key', 'sk-ant-gyre'], gemini: ['x-goog-api-key', 'gemini-key-gyre'] }[kind];
    if (key) assert.equal(seen.headers[key[0]], key[1]);
    else assert.match(seen.headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDGYREMOCK\//);
    assert.doesNotMatch(JSON.stringify(seen.headers), /sdk-key-not-forwarded/);
  });

  test(`${kind}: models.generateContentStream gives the text in chunks, the last with STOP and usage`, async () => {
    const stream = await ai.models.generateContentStream({ model: route, contents: 'Count the words here please' });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.ok(chunks.length >= 2, `chunks: ${chunks.length}`);
    assert.equal(chunks.map((c) => c.text ?? '').join(''), 'Mock reply to: Count the words here please');
    const last = chunks.at(-1);
    assert.equal(last.candidates[0].finishReason, 'STOP');
    assert.equal(last.usageMetadata.candidatesTokenCount, 8);
    assert.equal(last.modelVersion, model);
    for (const c of chunks.slice(0, -1)) assert.equal(c.candidates[0].finishReason, undefined);
  });

  test(`${kind}: a function call round trip, not streamed then streamed: functionCall, functionResponse, answer`, async () => {
    const config = { tools: [{ functionDeclarations: [WEATHER] }] };
    const ask = { role: 'user', parts: [{ text: 'What is the weather in Oslo?' }] };
    const first = await ai.models.generateContent({ model: route, contents: [ask], config });
    assert.equal(first.functionCalls.length, 1);
    const call = first.functionCalls[0];
    assert.equal(call.name, 'get_weather');
    assert.equal(typeof call.args.city, 'string');
    assert.equal(first.candidates[0].finishReason, 'STOP');
    // The provider was given the tool, its schema's types in the provider's own spelling.
    assert.match((await lastSeen()).body, /get_weather/);

    const turn = [ask, { role: 'model', parts: [{ functionCall: { name: call.name, args: call.args } }] },
      { role: 'user', parts: [{ functionResponse: { name: call.name, response: { forecast: 'sunny' } } }] }];
    // The mock echoes the tool result as its provider API carried it: Gemini's provider dialect wraps a tool
    // message's JSON as {"result": ...} in the functionResponse it sends.
    const result = kind === 'gemini' ? '{"result":{"forecast":"sunny"}}' : '{"forecast":"sunny"}';
    const second = await ai.models.generateContent({ model: route, contents: turn, config });
    assert.equal(second.text, `Mock reply to tool result: ${result}`);
    assert.equal(second.candidates[0].finishReason, 'STOP');

    const streamedCall = [];
    for await (const c of await ai.models.generateContentStream({ model: route, contents: [ask], config }))
      streamedCall.push(...(c.functionCalls ?? []));
    assert.deepEqual(streamedCall.map((c) => ({ name: c.name, args: c.args })), [{ name: call.name, args: call.args }]);
    let text = '';
    for await (const c of await ai.models.generateContentStream({ model: route, contents: turn, config }))
      text += c.text ?? '';
    assert.equal(text, `Mock reply to tool result: ${result}`);
  });
}

test('a JSON responseSchema reaches an openai provider as response_format json_schema, its types in lower case', async () => {
  await ai.models.generateContent({
    model: 'via-openai', contents: 'Give me a city',
    config: { responseMimeType: 'application/json', responseSchema: { type: Type.OBJECT, properties: { city: { type: Type.STRING } } } },
  });
  const body = JSON.parse((await lastSeen()).body);
  assert.deepEqual(body.response_format, {
    type: 'json_schema', json_schema: { name: 'response', schema: { type: 'object', properties: { city: { type: 'string' } } } },
  });
});

test('an unknown model is a 404 and a bad request a 400, both in Google\'s error shape', async () => {
  let r = await fetch(`${gyre.url}/v1beta/models/no-such-model:generateContent`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }),
  });
  assert.equal(r.status, 404);
  let e = await r.json();
  assert.equal(e.error.code, 404);
  assert.equal(e.error.status, 'NOT_FOUND');
  assert.match(e.error.message, /no-such-model/);

  r = await fetch(`${gyre.url}/v1beta/models/via-openai:generateContent`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ contents: [] }),
  });
  assert.equal(r.status, 400);
  e = await r.json();
  assert.deepEqual(Object.keys(e.error).sort(), ['code', 'message', 'status']);
  assert.equal(e.error.status, 'INVALID_ARGUMENT');
  assert.match(e.error.message, /contents/);

  // The SDK raises it with the status.
  await assert.rejects(ai.models.generateContent({ model: 'no-such-model', contents: 'hi' }), (err) => err.status === 404);
});

test('with auth on, the key is taken from x-goog-api-key or ?key=, and a wrong one is a 401 in Google\'s shape', async () => {
  const good = await sdk(authed.url, CLIENT_KEY).models.generateContent({ model: 'via-openai', contents: 'Hello there' });
  assert.equal(good.text, 'Mock reply to: Hello there');
  await assert.rejects(sdk(authed.url, 'wrong-key').models.generateContent({ model: 'via-openai', contents: 'x' }),
    (err) => err.status === 401);
  const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'By query' }] }] });
  let r = await fetch(`${authed.url}/v1beta/models/via-openai:generateContent?key=${CLIENT_KEY}`, { method: 'POST', body });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).candidates[0].content.parts[0].text, 'Mock reply to: By query');
  r = await fetch(`${authed.url}/v1beta/models/via-openai:generateContent?key=nope`, { method: 'POST', body });
  assert.equal(r.status, 401);
  const e = await r.json();
  assert.equal(e.error.status, 'UNAUTHENTICATED');
  assert.doesNotMatch(JSON.stringify(e), /nope/);
  // The query's key goes nowhere: not to the provider.
  assert.doesNotMatch(JSON.stringify(await lastSeen()), new RegExp(CLIENT_KEY));
});

test('a raw streamGenerateContent?alt=sse is data: lines of GenerateContentResponse chunks, CRLF-separated', async () => {
  const r = await fetch(`${gyre.url}/v1beta/models/via-openai:streamGenerateContent?alt=sse`, {
    method: 'POST', body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'one two' }] }] }),
  });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  const text = await r.text();
  const events = text.split('\r\n\r\n').filter(Boolean);
  assert.ok(events.every((e) => e.startsWith('data: {"candidates":[')), text);
  const last = JSON.parse(events.at(-1).slice(6));
  assert.equal(last.candidates[0].finishReason, 'STOP');
  assert.equal(last.modelVersion, 'gpt-4o-mini');
});
