// Passwords in connection strings must never reach a log line, result or span.
// The scheme's length is bounded (RFC 3986 sets none; real ones are short): unbounded, a long run of
// letters without "://" took quadratic time (80,000 characters: 6 s) in every log line that held one.
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]{0,31}:\/\/[^:/?#\s@]*:)([^@/?#\s]*)@/gi;

export function redactUrl(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1***@');
}
