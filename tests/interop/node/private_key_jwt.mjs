// openid-client authenticating with private_key_jwt (RFC 7523, OIDC Core §9) against a
// running Lanyard, from discovery alone: its client_credentials grant and token
// introspection, each with a fresh assertion the library signs with the client's ES256 key.
//
// `node private_key_jwt.mjs --make-key` prints a new key pair as JSON ({private, public}
// JWKs), for the test to register the public one. Run then by tests/e2e/interop.rs with
// ISSUER, CLIENT_ID and PRIVATE_JWK set; prints one JSON line of what it saw.

import * as client from 'openid-client';
import { env, makeEs256Key, privateKeyFromEnv } from './lib.mjs';

async function main() {
  const config = await client.discovery(
    new URL(env('ISSUER')),
    env('CLIENT_ID'),
    undefined,
    client.PrivateKeyJwt(await privateKeyFromEnv()),
    { execute: [client.allowInsecureRequests] },
  );
  const metadata = config.serverMetadata();
  const seen = {
    library: 'openid-client',
    advertised: metadata.token_endpoint_auth_methods_supported.includes('private_key_jwt'),
  };
  const tokens = await client.clientCredentialsGrant(config, { scope: 'reports' });
  seen.token_type = tokens.token_type;
  const introspected = await client.tokenIntrospection(config, tokens.access_token);
  seen.active = introspected.active;
  seen.introspected_client_id = introspected.client_id;
  console.log(JSON.stringify(seen));
}

const run = process.argv.includes('--make-key')
  ? async () => console.log(JSON.stringify(await makeEs256Key()))
  : main;
run().catch((e) => {
  console.error(e);
  process.exit(1);
});
