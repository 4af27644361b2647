// gyre-mock's documented rules (docs/mock.md), restated independently of its
// C code, so tests can compute the ids it must answer with.
export const utf8 = (s) => new TextEncoder().encode(s);
export function fnv1a(bytes, h = 0x811c9dc5) {
  for (const b of bytes) h = Math.imul((h ^ b) >>> 0, 16777619) >>> 0;
  return h;
}
export const hex8 = (n) => n.toString(16).padStart(8, '0');
/** The mock's id for a request body (the SDKs send JSON.stringify(params)). */
export const chatId = (body) => `chatcmpl-mock-${hex8(fnv1a(utf8(JSON.stringify(body))))}`;
export const callId = (body) => `call_mock_${hex8(fnv1a(utf8('call'), fnv1a(utf8(JSON.stringify(body)))))}`;
