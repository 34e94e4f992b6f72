// openid-client's device authorization grant (RFC 8628) against a running Lanyard, from
// discovery alone: initiateDeviceAuthorization, then pollDeviceAuthorizationGrant while a
// person (scripted over HTTP) opens verification_uri_complete, signs in, is brought back to
// the code and approves; openid-client validates the ID token it gets. A second device is
// denied, and the library's poll ends with access_denied.
//
// Run by tests/e2e/interop.rs with ISSUER, CLIENT_ID (a public client with the device grant
// and refresh_token), USERNAME and PASSWORD set. Prints one JSON line of what it saw.

import * as client from 'openid-client';
import { Browser, check, env, formValue } from './lib.mjs';

/** The person: opens the link, signs in if asked, and answers `decision` on the device page. */
async function answer(issuer, link, decision) {
  const browser = new Browser();
  let page = await (await browser.get(link)).text();
  if (page.includes('action="/account/signin"')) {
    const signedIn = await browser.postForm(`${issuer}/account/signin`, {
      csrf: formValue(page, 'csrf'),
      username: env('USERNAME'),
      password: env('PASSWORD'),
    });
    check(signedIn.status === 303, `the sign-in answered ${signedIn.status}`);
    const back = new URL(signedIn.headers.get('location'), issuer);
    page = await (await browser.get(back.href)).text();
  }
  check(page.includes('Approve this device?'), `the device page:\n${page}`);
  const done = await browser.postForm(`${issuer}/device/decide`, {
    csrf: formValue(page, 'csrf'),
    user_code: formValue(page, 'user_code'),
    decision,
  });
  check(done.status === 200, `deciding answered ${done.status}`);
}

async function main() {
  const issuer = env('ISSUER');
  const seen = { library: 'openid-client' };
  const config = await client.discovery(new URL(issuer), env('CLIENT_ID'), undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  seen.device_authorization_endpoint = config.serverMetadata().device_authorization_endpoint;

  const device = await client.initiateDeviceAuthorization(config, { scope: 'openid profile' });
  seen.user_code_shape = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/.test(device.user_code);
  seen.interval = device.interval;
  // The library polls (waiting the interval first) while the person approves.
  const polling = client.pollDeviceAuthorizationGrant(config, device);
  await answer(issuer, device.verification_uri_complete, 'approve');
  const tokens = await polling;
  const claims = tokens.claims();
  seen.sub = claims.sub;
  seen.id_token_aud = claims.aud;
  seen.scope = tokens.scope;
  seen.has_refresh_token = typeof tokens.refresh_token === 'string';
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  seen.refreshed_sub = refreshed.claims()?.sub;

  const denied = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
  const refused = client.pollDeviceAuthorizationGrant(config, denied).then(
    () => 'tokens',
    (e) => (e instanceof client.ResponseBodyError ? e.error : `${e}`),
  );
  await answer(issuer, denied.verification_uri_complete, 'deny');
  seen.denied = await refused;
  console.log(JSON.stringify(seen));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
