/** Replaces the password of a connection URL with `***`. Returns the input unchanged if it is not a URL. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.password) return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/(\/\/[^:/@\s]+:)[^@\s]+@/g, '$1***@');
  }
}

/** The password of a connection URL, or undefined. */
export function passwordOf(url: string): string | undefined {
  try {
    const password = new URL(url).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes every secret from free text (logs, error messages): the given secrets (and their
 * URL-encoded forms) and any `user:password@` part of a URL.
 */
export function redactText(text: string, secrets: Iterable<string> = []): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]+:)[^@\s/]+@/gi, '$1***@');
  for (const secret of secrets) {
    if (!secret || secret.length < 3) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      out = out.split(form).join('***');
    }
  }
  return out;
}
