// OTLP/HTTP JSON as any OpenTelemetry SDK sends it (`POST /v1/traces`, `POST /v1/logs`, the
// API key in `X-Agentops-Api-Key`), and a GenAI session in the semantic conventions' newest
// form: an agent span, two LLM spans with `gen_ai.input.messages` / `gen_ai.output.messages`
// (parts, as JSON text) around a tool call, the `execute_tool` span that ran it, and log records
// tied to the trace and its spans.

import { randomBytes } from 'node:crypto';
import { API_KEY } from './server.mjs';

/** An OTLP AnyValue. */
export function anyValue(v) {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
  if (v && typeof v === 'object') return { kvlistValue: { values: attributes(v) } };
  return {};
}

/** OTLP attributes (`[{key, value}]`) from an object. */
export function attributes(obj) {
  return Object.entries(obj).map(([key, value]) => ({ key, value: anyValue(value) }));
}

export const hexId = (bytes) => randomBytes(bytes).toString('hex');
const nanos = (ms) => String(BigInt(Math.round(ms * 1000)) * 1000n);

/** The session id of a trace without a `session.id`: the trace id written as a UUID. */
export function traceSessionId(traceId) {
  const t = traceId.toLowerCase();
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-${t.slice(12, 16)}-${t.slice(16, 20)}-${t.slice(20)}`;
}

async function post(base, path, body) {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Agentops-Api-Key': API_KEY },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}: ${text}`);
  const reply = text ? JSON.parse(text) : {};
  const rejected = reply.partialSuccess && (reply.partialSuccess.rejectedSpans || reply.partialSuccess.rejectedLogRecords);
  if (rejected && Number(rejected) > 0) throw new Error(`${path}: ${rejected} rejected: ${text}`);
  return reply;
}

const RESOURCE = { attributes: attributes({ 'service.name': 'trip-planner', 'telemetry.sdk.language': 'javascript' }) };

/** Spans `{traceId, spanId, parentSpanId?, name, start, end (ms), attrs, status?}` to /v1/traces. */
export function sendSpans(base, spans) {
  return post(base, '/v1/traces', {
    resourceSpans: [
      {
        resource: RESOURCE,
        scopeSpans: [
          {
            scope: { name: 'browser-test.genai', version: '1.0.0' },
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId || '',
              name: s.name,
              kind: s.kind ?? 3,
              startTimeUnixNano: nanos(s.start),
              endTimeUnixNano: nanos(s.end),
              attributes: attributes(s.attrs || {}),
              status: s.status || { code: 1 },
            })),
          },
        ],
      },
    ],
  });
}

/** Log records `{time (ms), severityText?, severityNumber?, eventName?, body, attrs, traceId?, spanId?}` to /v1/logs. */
export function sendLogs(base, records) {
  return post(base, '/v1/logs', {
    resourceLogs: [
      {
        resource: RESOURCE,
        scopeLogs: [
          {
            scope: { name: 'browser-test.genai' },
            logRecords: records.map((r) => ({
              timeUnixNano: nanos(r.time),
              observedTimeUnixNano: nanos(r.time),
              severityNumber: r.severityNumber ?? 0,
              severityText: r.severityText ?? '',
              ...(r.eventName ? { eventName: r.eventName } : {}),
              body: anyValue(r.body),
              attributes: attributes(r.attrs || {}),
              traceId: r.traceId || '',
              spanId: r.spanId || '',
            })),
          },
        ],
      },
    ],
  });
}

export const SYSTEM = 'You plan trips.';
export const QUESTION = 'What is the weather in Paris?';
export const ANSWER = 'It is sunny in Paris.';
export const REASONING = 'The user asks about the weather; get_weather knows it.';
/** The tool's result, with markup that must show as text. */
export const TOOL_RESULT = '<b>sunny</b>, 22 °C';
export const CALL_ID = 'call_weather_1';

const text = (content) => ({ type: 'text', content });
const toolCall = { type: 'tool_call', id: CALL_ID, name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } };

/**
 * The GenAI session: sends it and resolves to the ids the tests look for (`session`, `agent`,
 * `llm1` (asks for the tool), `tool`, `llm2` (answers), `logs` (bodies in time order)).
 */
export async function seedGenAi(base) {
  const traceId = hexId(16);
  const [agent, llm1, tool, llm2] = [hexId(8), hexId(8), hexId(8), hexId(8)];
  const t = Date.now() - 600e3;
  const model = { 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.response.model': 'gpt-4o-2024-08-06' };
  const history = [
    { role: 'system', parts: [text(SYSTEM)] },
    { role: 'user', parts: [text(QUESTION)] },
  ];
  const firstAnswer = [{ role: 'assistant', parts: [{ type: 'reasoning', content: REASONING }, toolCall], finish_reason: 'tool_calls' }];
  const secondInput = [...history, { role: 'assistant', parts: [toolCall] }, { role: 'tool', parts: [{ type: 'tool_call_response', id: CALL_ID, response: TOOL_RESULT }] }];
  const secondAnswer = [{ role: 'assistant', parts: [text(ANSWER)], finish_reason: 'stop' }];
  await sendSpans(base, [
    { traceId, spanId: agent, name: 'invoke_agent trip_planner', start: t, end: t + 3000, kind: 1, attrs: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'trip_planner' } },
    {
      traceId,
      spanId: llm1,
      parentSpanId: agent,
      name: 'chat gpt-4o',
      start: t + 50,
      end: t + 1050,
      attrs: {
        ...model,
        'gen_ai.operation.name': 'chat',
        'gen_ai.usage.input_tokens': 48,
        'gen_ai.usage.output_tokens': 21,
        'gen_ai.response.finish_reasons': ['tool_calls'],
        'gen_ai.input.messages': JSON.stringify(history),
        'gen_ai.output.messages': JSON.stringify(firstAnswer),
      },
    },
    {
      traceId,
      spanId: tool,
      parentSpanId: agent,
      name: 'execute_tool get_weather',
      start: t + 1100,
      end: t + 1700,
      kind: 1,
      attrs: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'get_weather', 'gen_ai.tool.call.id': CALL_ID, 'gen_ai.tool.type': 'function' },
    },
    {
      traceId,
      spanId: llm2,
      parentSpanId: agent,
      name: 'chat gpt-4o',
      start: t + 1750,
      end: t + 2900,
      attrs: {
        ...model,
        'gen_ai.operation.name': 'chat',
        'gen_ai.usage.input_tokens': 96,
        'gen_ai.usage.output_tokens': 9,
        'gen_ai.response.finish_reasons': ['stop'],
        'gen_ai.input.messages': JSON.stringify(secondInput),
        'gen_ai.output.messages': JSON.stringify(secondAnswer),
      },
    },
  ]);
  // Sent out of order: the dashboard lists them by time.
  const logs = [
    { time: t + 1300, severityText: 'WARN', severityNumber: 13, body: { message: 'weather cache miss', city: 'Paris' }, attrs: { 'cache.name': 'weather' }, traceId, spanId: tool },
    { time: t + 20, severityText: 'DEBUG', severityNumber: 5, eventName: 'agent.start', body: 'agent trip_planner started', attrs: {}, traceId },
    { time: t + 100, severityText: 'INFO', severityNumber: 9, body: 'planning a trip <i>for the user</i>', attrs: { 'code.function': 'plan' }, traceId, spanId: llm1 },
  ];
  await sendLogs(base, logs);
  return {
    session: traceSessionId(traceId),
    traceId,
    agent,
    llm1,
    tool,
    llm2,
    /** What the log records' bodies show, in time order (the last: an object, as JSON). */
    logs: ['agent trip_planner started', 'planning a trip <i>for the user</i>', 'weather cache miss'],
  };
}

/** Resolves once the session has ended (plain traces end after the server's quiet window). */
export async function waitEnded(base, id, ms = 20000) {
  const until = Date.now() + ms;
  let last = null;
  while (Date.now() < until) {
    const res = await fetch(`${base}/api/v1/sessions/${id}`, { headers: { 'X-Agentops-Api-Key': API_KEY } });
    last = res.ok ? await res.json() : { status: res.status };
    if (last.end_time) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`session ${id} did not end within ${ms} ms: ${JSON.stringify(last).slice(0, 300)}`);
}
