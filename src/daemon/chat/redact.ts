/**
 * Secrets an upstream may echo back in its error text (an `Authorization` header, an API key, a URL with its
 * credentials or internal host): replaced before the text is logged. Users never see the text at all.
 */
const patterns: Array<[RegExp, string]> = [
  [/\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  [/\b(sk|pk|rk|ak)-[A-Za-z0-9_-]{6,}/g, '[redacted-key]'],
  [/\b((?:api[_-]?key|access[_-]?token|secret|password|authorization|x-api-key)["']?\s*[:=]\s*["']?)[^"'\s,}&]+/gi, '$1[redacted]'],
  [/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, '[url]'],
  [/\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, '[redacted-jwt]'],
];

export function redactSecrets(text: string, maxLength = 500): string {
  let out = text.length > maxLength ? `${text.slice(0, maxLength)}…` : text;
  for (const [re, to] of patterns) out = out.replace(re, to);
  return out;
}
