// openid-client authenticating with private_key_jwt (RFC 7523, OIDC Core §9) against a
// running Lanyard, from discovery alone: its client_credentials grant and token
// introspection, each with a fresh assertion the library signs with the client's ES256 key.
//
// `node private_key_jwt.mjs --make-key` prints a new key pair as JSON ({private, public}
// JWKs), for the test to register the public one. Run then by tests/e2e/interop.rs with
// ISSUER, CLIENT_ID and PRIVATE_JWK set; prints one JSON line of what it saw.

import * as client from 'openid-client';
import { env } from './lib.mjs';

async function makeKey() {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ]);
  const kid = `interop-${Date.now()}`;
  const privateJwk = { ...(await crypto.subtle.exportKey('jwk', pair.privateKey)), kid };
  const { d, key_ops, ext, ...rest } = privateJwk;
  console.log(JSON.stringify({ private: privateJwk, public: { ...rest, use: 'sig', alg: 'ES256' } }));
}

async function main() {
  const jwk = JSON.parse(env('PRIVATE_JWK'));
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
  ]);
  const config = await client.discovery(
    new URL(env('ISSUER')),
    env('CLIENT_ID'),
    undefined,
    client.PrivateKeyJwt({ key, kid: jwk.kid }),
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

(process.argv.includes('--make-key') ? makeKey() : main()).catch((e) => {
  console.error(e);
  process.exit(1);
});
