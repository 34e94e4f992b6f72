// openid-client with DPoP (RFC 9449) against a running Lanyard that requires server nonces,
// from discovery alone: a client_credentials grant whose token the library binds to its own
// ES256 key (answering the use_dpop_nonce request itself), then a call to the admin API with
// fetchProtectedResource (the DPoP scheme and a fresh proof), and the same token sent as
// Bearer, which must be refused.
//
// Run by tests/e2e/interop.rs with ISSUER, CLIENT_ID, CLIENT_SECRET and API_URL set. Prints
// one JSON line of what it saw.

import * as client from 'openid-client';
import { discoverWithSecret, env } from './lib.mjs';

async function main() {
  const config = await discoverWithSecret();
  const metadata = config.serverMetadata();
  const seen = {
    library: 'openid-client',
    advertised: metadata.dpop_signing_alg_values_supported.includes('ES256'),
  };
  const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  // The first try is answered use_dpop_nonce: the library retries with the nonce itself.
  const tokens = await client.clientCredentialsGrant(config, { scope: 'lanyard:admin' }, { DPoP: dpop });
  seen.token_type = tokens.token_type;
  const api = new URL(env('API_URL'));
  // The nonce learnt at the token endpoint is sent to the API too.
  const response = await client.fetchProtectedResource(config, tokens.access_token, api, 'GET', undefined, undefined, { DPoP: dpop });
  seen.api_status = response.status;
  const bearer = await fetch(api, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  seen.as_bearer_status = bearer.status;
  seen.as_bearer_challenge = bearer.headers.get('www-authenticate').split(' ')[0];
  console.log(JSON.stringify(seen));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
