/**
 * Password hashes: PBKDF2-SHA256 through WebCrypto, a per-user salt, and the iteration count stored
 * with each hash so it can be raised later (workerd caps PBKDF2 at 100,000 iterations).
 *
 *   pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>
 */
const ITERATIONS = 100_000;
const encoder = new TextEncoder();

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Counts key derivations: tests check that every sign-in path does the same work (item 5 of issue 23). */
export const passwordWork = { derivations: 0 };

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  passwordWork.derivations++;
  const key = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256);
  return new Uint8Array(bits);
}

export async function hashPassword(password: string, salt = crypto.getRandomValues(new Uint8Array(16))): Promise<string> {
  return `pbkdf2-sha256$${ITERATIONS}$${b64(salt)}$${b64(await derive(password, salt, ITERATIONS))}`;
}

/**
 * A well-formed hash no password matches (its salt and hash are zeros): checking a name that has
 * no account against it costs exactly what checking a real account costs.
 */
export const DECOY_HASH = `pbkdf2-sha256$${ITERATIONS}$${b64(new Uint8Array(16))}$${b64(new Uint8Array(32))}`;

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, iterations, salt, hash] = stored.split("$");
  if (scheme !== "pbkdf2-sha256" || !iterations || !salt || !hash) return false;
  const expected = unb64(hash);
  const actual = await derive(password, unb64(salt), Number(iterations));
  return expected.length === actual.length && crypto.subtle.timingSafeEqual(expected, actual);
}
