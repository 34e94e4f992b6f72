// Helpers the openid-client scripts share: environment, checks, and a browser scripted over
// HTTP (cookies kept, redirects not followed) that reads the forms of Lanyard's pages.

import * as client from 'openid-client';

export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** The client of CLIENT_ID and CLIENT_SECRET (HTTP Basic), from the issuer's discovery. */
export function discoverWithSecret() {
  return client.discovery(
    new URL(env('ISSUER')),
    env('CLIENT_ID'),
    undefined,
    client.ClientSecretBasic(env('CLIENT_SECRET')),
    { execute: [client.allowInsecureRequests] },
  );
}

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** A browser that keeps cookies and never follows redirects. */
export class Browser {
  cookies = new Map();

  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  get(url) {
    return this.request(url);
  }

  postForm(url, fields) {
    return this.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

function htmlUnescape(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, entity) => {
    const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[entity.toLowerCase()];
    if (named) return named;
    return String.fromCodePoint(
      entity[1].toLowerCase() === 'x' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10),
    );
  });
}

/** The value of the form field `name` in an HTML page. */
export function formValue(page, name) {
  for (const [tag] of page.matchAll(/<input\b[^>]*>/gi)) {
    const attributes = Object.fromEntries(
      [...tag.matchAll(/([a-z_-]+)="([^"]*)"/gi)].map(([, k, v]) => [k.toLowerCase(), v]),
    );
    if (attributes.name === name) return htmlUnescape(attributes.value ?? '');
  }
  throw new Error(`no field ${name} in the page:\n${page}`);
}

export function location(response, what) {
  check(
    response.status === 302 || response.status === 303,
    `${what}: expected a redirect, got ${response.status}`,
  );
  const to = response.headers.get('location');
  check(to, `${what}: a redirect without Location`);
  return new URL(to);
}

/** The error code of a failed token-endpoint call, or fails if it did not fail. */
export async function oauthError(promise, what) {
  try {
    await promise;
  } catch (e) {
    if (e instanceof client.ResponseBodyError) return e.error;
    throw e;
  }
  throw new Error(`${what} succeeded`);
}

/** A new ES256 key pair as JWKs: `{private, public}` (the public one with `use` and `alg`). */
export async function makeEs256Key() {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ]);
  const kid = `interop-${Date.now()}`;
  const privateJwk = { ...(await crypto.subtle.exportKey('jwk', pair.privateKey)), kid };
  const { d, key_ops, ext, ...rest } = privateJwk;
  return { private: privateJwk, public: { ...rest, use: 'sig', alg: 'ES256' } };
}

/** The private ES256 key in the environment's PRIVATE_JWK, as openid-client takes it. */
export async function privateKeyFromEnv() {
  const jwk = JSON.parse(env('PRIVATE_JWK'));
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
  ]);
  return { key, kid: jwk.kid };
}

/**
 * The person signs in at the authorization URL `url` (scripted over HTTP: the sign-in page's
 * form with USERNAME and PASSWORD), and the library takes the callback: state, iss, the code
 * with the PKCE verifier, and the ID token's nonce. The token response.
 */
export async function signInAndRedeem(config, url, { codeVerifier, state, nonce }) {
  const issuer = env('ISSUER');
  const browser = new Browser();
  const page = await browser.get(url);
  check(page.status === 200, `the sign-in page: ${page.status}`);
  const html = await page.text();
  const signedIn = await browser.postForm(new URL('signin', `${issuer}/`), {
    csrf: formValue(html, 'csrf'),
    authorization_request: formValue(html, 'authorization_request'),
    username: env('USERNAME'),
    password: env('PASSWORD'),
  });
  return client.authorizationCodeGrant(config, location(signedIn, 'sign-in'), {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
}
