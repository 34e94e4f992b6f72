// openid-client's signed request objects (JAR, RFC 9101) against a running Lanyard, from
// discovery alone: buildAuthorizationUrlWithJAR signs the authorization request with the
// client's ES256 key and sends it by value; the person signs in (scripted over HTTP); the
// library checks state, iss and the ID token (nonce) and redeems the code.
//
// Run by tests/e2e/interop.rs with ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, USERNAME,
// PASSWORD and PRIVATE_JWK (made by `node private_key_jwt.mjs --make-key`, its public half
// registered as the client's jwks) set. Prints one JSON line of what it saw.

import * as client from 'openid-client';
import { env, privateKeyFromEnv, signInAndRedeem } from './lib.mjs';

async function main() {
  const issuer = env('ISSUER');
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
  const url = await client.buildAuthorizationUrlWithJAR(
    config,
    {
      redirect_uri: env('REDIRECT_URI'),
      scope: 'openid profile',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    },
    await privateKeyFromEnv(),
  );
  const seen = {
    library: 'openid-client',
    front_channel: [...url.searchParams.keys()].sort(),
  };
  const tokens = await signInAndRedeem(config, url, { codeVerifier, state, nonce });
  seen.sub = tokens.claims().sub;
  console.log(JSON.stringify(seen));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
