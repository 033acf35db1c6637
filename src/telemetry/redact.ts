// Passwords in connection strings must never reach a log line, result or span.
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]*:)([^@/?#\s]*)@/gi;

export function redactUrl(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1***@');
}
