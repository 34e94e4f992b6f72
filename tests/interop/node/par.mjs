// openid-client's pushed authorization requests (RFC 9126) against a running Lanyard, from
// discovery alone: buildAuthorizationUrlWithPAR pushes the request (client_secret_basic) and
// builds the URL with only client_id and request_uri; the person signs in (scripted over
// HTTP); the library checks state, iss and the ID token (nonce) and redeems the code.
//
// Run by tests/e2e/interop.rs with ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, USERNAME
// and PASSWORD set. Prints one JSON line of what it saw.

import * as client from 'openid-client';
import { Browser, env, signInAndRedeem } from './lib.mjs';

async function main() {
  const issuer = env('ISSUER');
  const redirectUri = env('REDIRECT_URI');
  const config = await client.discovery(
    new URL(issuer),
    env('CLIENT_ID'),
    undefined,
    client.ClientSecretBasic(env('CLIENT_SECRET')),
    { execute: [client.allowInsecureRequests] },
  );
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const seen = {
    library: 'openid-client',
    front_channel: [...url.searchParams.keys()].sort(),
  };
  const tokens = await signInAndRedeem(config, url, { codeVerifier, state, nonce });
  seen.sub = tokens.claims().sub;
  // The request_uri was used: the same URL again is refused.
  const again = await new Browser().get(url);
  seen.reused_status = again.status;
  console.log(JSON.stringify(seen));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
