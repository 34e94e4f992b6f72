// openid-client's generic grant request carrying an RFC 8693 token exchange against a
// running Lanyard, from discovery alone: the API (CLIENT_ID, a confidential client with the
// token-exchange grant) exchanges the person's access token it received (SUBJECT_TOKEN) for
// one meant for AUDIENCE; then asks for an audience it may not, and reads the error.
//
// Run by tests/e2e/interop.rs with ISSUER, CLIENT_ID, CLIENT_SECRET, SUBJECT_TOKEN, AUDIENCE
// and FORBIDDEN_AUDIENCE set. Prints one JSON line of what it saw (the new access token
// among it, for the test to check at the downstream API).

import * as client from 'openid-client';
import { discoverWithSecret, env } from './lib.mjs';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

async function main() {
  const config = await discoverWithSecret();
  const seen = {
    library: 'openid-client',
    advertised: config.serverMetadata().grant_types_supported.includes(GRANT),
  };
  const exchange = (audience) =>
    client.genericGrantRequest(config, GRANT, {
      subject_token: env('SUBJECT_TOKEN'),
      subject_token_type: ACCESS_TOKEN,
      audience,
    });
  const tokens = await exchange(env('AUDIENCE'));
  seen.issued_token_type = tokens.issued_token_type;
  seen.token_type = tokens.token_type;
  seen.refresh_token = tokens.refresh_token ?? null;
  seen.access_token = tokens.access_token;
  try {
    await exchange(env('FORBIDDEN_AUDIENCE'));
    seen.forbidden = 'issued';
  } catch (e) {
    seen.forbidden = e.error ?? String(e);
  }
  console.log(JSON.stringify(seen));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
