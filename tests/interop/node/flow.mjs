// openid-client (panva's certified relying-party library) against a running Lanyard, from
// discovery alone: code flow with PKCE, state and nonce (and the RFC 9207 `iss` check), its own
// ID-token validation, UserInfo, refresh with rotation, introspection (RFC 7662), revocation
// (RFC 7009) and RP-initiated logout. The person's sign-in is scripted over HTTP: no browser.
//
// Run by tests/e2e/interop.rs with ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
// POST_LOGOUT_REDIRECT_URI, USERNAME and PASSWORD set. Exits 0 and prints one JSON line of
// what it saw (the Rust test checks it); on any failure prints the error and exits 1.

import * as client from 'openid-client';
import { Browser, check, env, formValue, location, oauthError } from './lib.mjs';

const SCOPE = 'openid profile email offline_access';

async function main() {
  const issuer = env('ISSUER');
  const clientId = env('CLIENT_ID');
  const redirectUri = env('REDIRECT_URI');
  const postLogoutRedirectUri = env('POST_LOGOUT_REDIRECT_URI');
  const username = env('USERNAME');
  const password = env('PASSWORD');
  const seen = { library: 'openid-client' };

  // Discovery; the tests' issuer is plain http on 127.0.0.1, which openid-client refuses
  // unless told otherwise.
  const config = await client.discovery(
    new URL(issuer),
    clientId,
    undefined,
    client.ClientSecretBasic(env('CLIENT_SECRET')),
    { execute: [client.allowInsecureRequests] },
  );
  const metadata = config.serverMetadata();
  check(metadata.issuer === issuer, `discovered issuer ${metadata.issuer}`);
  for (const endpoint of ['revocation_endpoint', 'introspection_endpoint', 'end_session_endpoint']) {
    check(metadata[endpoint], `discovery advertises no ${endpoint}`);
  }

  // The code flow, as an app starts it.
  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: SCOPE,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  });

  // The person signs in.
  const browser = new Browser();
  const page = await browser.get(authorizationUrl);
  check(page.status === 200, `the sign-in page: ${page.status}`);
  const html = await page.text();
  const signedIn = await browser.postForm(new URL('signin', `${issuer}/`), {
    csrf: formValue(html, 'csrf'),
    authorization_request: formValue(html, 'authorization_request'),
    username,
    password,
  });
  const callback = location(signedIn, 'sign-in');
  check(
    `${callback.origin}${callback.pathname}` === redirectUri,
    `sign-in redirected to ${callback}`,
  );

  // The callback: state, iss (RFC 9207), code exchange with the PKCE verifier, ID token
  // validation (signature from jwks_uri, iss, aud, exp, iat, nonce).
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  check(claims, 'no ID token');
  check(tokens.refresh_token, 'no refresh token with offline_access');
  seen.sub = claims.sub;
  seen.id_token_aud = claims.aud;
  seen.nonce_matches = claims.nonce === nonce;

  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  seen.userinfo_sub = userinfo.sub;
  seen.email = userinfo.email;
  seen.preferred_username = userinfo.preferred_username;

  // Refresh rotates: a new refresh token, and the new one works.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  seen.refresh_rotated = refreshed.refresh_token !== tokens.refresh_token;
  seen.refreshed_access_token_differs = refreshed.access_token !== tokens.access_token;
  seen.refreshed_id_token_sub = refreshed.claims()?.sub;
  const again = await client.refreshTokenGrant(config, refreshed.refresh_token);
  seen.rotated_token_works = Boolean(again.access_token);
  seen.rotated_again = again.refresh_token !== refreshed.refresh_token;
  check(again.refresh_token, 'the second refresh returned no refresh token');

  // Introspection (client_secret_basic).
  const active = await client.tokenIntrospection(config, again.access_token);
  seen.introspection_active_before = active.active;
  seen.introspected_sub = active.sub;
  seen.introspected_client_id = active.client_id;
  const currentRefresh = await client.tokenIntrospection(config, again.refresh_token, {
    token_type_hint: 'refresh_token',
  });
  seen.current_refresh_active = currentRefresh.active;
  const retiredRefresh = await client.tokenIntrospection(config, tokens.refresh_token, {
    token_type_hint: 'refresh_token',
  });
  seen.retired_refresh_active = retiredRefresh.active;

  // Revocation of the refresh token: its family and the access tokens it issued.
  await client.tokenRevocation(config, again.refresh_token, { token_type_hint: 'refresh_token' });
  const after = await client.tokenIntrospection(config, again.access_token);
  seen.introspection_active_after_revocation = after.active;
  seen.refresh_after_revocation = await oauthError(
    client.refreshTokenGrant(config, again.refresh_token),
    'a refresh with the revoked token',
  );
  // The grace window for a retired token must not bring a revoked family back.
  seen.retired_refresh_after_revocation = await oauthError(
    client.refreshTokenGrant(config, refreshed.refresh_token),
    'a refresh with a retired token of the revoked family',
  );

  // The person is still signed in at Lanyard: prompt=none answers with a code.
  const silent = () =>
    client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
      state,
      prompt: 'none',
    });
  const before = location(await browser.get(silent()), 'prompt=none before logout');
  seen.prompt_none_before_logout = before.searchParams.has('code')
    ? 'code'
    : before.searchParams.get('error');

  // RP-initiated logout with the ID token as hint.
  const logoutState = client.randomState();
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: postLogoutRedirectUri,
    state: logoutState,
  });
  const loggedOut = await browser.get(endSession);
  seen.logout_status = loggedOut.status;
  const back = location(loggedOut, 'logout');
  seen.logout_redirect = `${back.origin}${back.pathname}`;
  seen.logout_state_matches = back.searchParams.get('state') === logoutState;

  // Signed out: prompt=none now fails, and openid-client reads the error response.
  const afterLogout = location(await browser.get(silent()), 'prompt=none after logout');
  try {
    await client.authorizationCodeGrant(config, afterLogout, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
    });
    throw new Error('prompt=none after logout returned a code');
  } catch (e) {
    if (!(e instanceof client.AuthorizationResponseError)) throw e;
    seen.prompt_none_after_logout = e.error;
  }

  console.log(JSON.stringify(seen));
}

main().catch((e) => {
  console.error(e);
  if (e?.cause) console.error('cause:', e.cause);
  process.exit(1);
});
