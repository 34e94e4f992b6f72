// Minimal panva/oidc-provider (9.x) instance used as a performance peer.
// Adapted from ../shared/peers/oidc-provider/provider.mjs for Lanyard's bench runner
// (crates/lanyard-bench): refresh tokens rotate, and BENCH_MINT_PORT serves a minting route
// (tokens, and a signed-in browser session for the SSO and code-exchange scenarios).
//
// Environment:
//   PORT        listen port on 127.0.0.1 (default 3000); issuer is http://127.0.0.1:PORT
//   AT_FORMAT   'jwt' (RFC 9068 JWT access tokens) or 'opaque' (default 'jwt')
//   AT_ALG      what JWT access tokens are signed with: RS256 (default), ES256 or EdDSA;
//               ID tokens stay RS256 (as Lanyard's do)
//   JWKS_FILE   optional path of a private JWKS (JSON); generated (RSA 2048) and written
//               there when missing, so restarts keep the same key; without it a fresh
//               key is generated in memory on every start.
//   NODE_ENV    run with NODE_ENV=production for measurements.
//   BENCH_MINT_PORT  a loopback port for POST /mint?kind=refresh|access&n=N and
//               POST /mint?kind=session (see below).
//
// Storage is an in-process Map adapter (no network round trip), i.e. the most
// favourable storage oidc-provider can have. The package's own MemoryAdapter keeps
// only ~1000-2000 entries (LRU), which would evict pre-minted tokens under load.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const HOST = '127.0.0.1';
const PORT = Number(process.env.PORT || 3000);
const ISSUER = `http://${HOST}:${PORT}`;
const AT_FORMAT = process.env.AT_FORMAT || 'jwt';
if (!['jwt', 'opaque'].includes(AT_FORMAT)) throw new Error(`AT_FORMAT must be jwt or opaque, got ${AT_FORMAT}`);
const AT_ALG = process.env.AT_ALG || 'RS256';
if (!['RS256', 'ES256', 'EdDSA'].includes(AT_ALG)) throw new Error(`AT_ALG must be RS256, ES256 or EdDSA, got ${AT_ALG}`);

const RESOURCE = 'urn:bench:api';
const RESOURCE_SCOPES = 'api:read api:write';

function loadOrCreateJwks() {
  const file = process.env.JWKS_FILE;
  if (file && existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const key = (alg, type, options) => {
    const { privateKey } = generateKeyPairSync(type, options);
    return { ...privateKey.export({ format: 'jwk' }), kid: `bench-${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`, alg, use: 'sig' };
  };
  const jwks = { keys: [key('RS256', 'rsa', { modulusLength: 2048 })] };
  if (AT_ALG === 'ES256') jwks.keys.push(key('ES256', 'ec', { namedCurve: 'P-256' }));
  if (AT_ALG === 'EdDSA') jwks.keys.push(key('EdDSA', 'ed25519'));
  if (file) writeFileSync(file, JSON.stringify(jwks), { mode: 0o600 });
  return jwks;
}

// ---- storage: Map with expiry, FIFO-capped ------------------------------------------
const MAX_ENTRIES = 2_000_000;
const store = new Map(); // key -> { payload, expiresAt }
const grantIndex = new Map(); // grantId -> Set(key)
const uidIndex = new Map();
const userCodeIndex = new Map();
const now = () => Date.now();

function put(key, value, expiresIn) {
  if (store.size >= MAX_ENTRIES) store.delete(store.keys().next().value);
  store.set(key, { value, expiresAt: typeof expiresIn === 'number' ? now() + expiresIn * 1000 : Infinity });
}
function get(key) {
  const e = store.get(key);
  if (!e) return undefined;
  if (e.expiresAt <= now()) { store.delete(key); return undefined; }
  return e.value;
}
const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

class BenchMapAdapter {
  constructor(model) { this.model = model; }
  key(id) { return `${this.model}:${id}`; }
  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    put(key, payload, expiresIn);
    if (this.model === 'Session' && payload.uid) uidIndex.set(payload.uid, id);
    if (payload.userCode) userCodeIndex.set(payload.userCode, id);
    if (grantable.has(this.model) && payload.grantId) {
      let s = grantIndex.get(payload.grantId);
      if (!s) grantIndex.set(payload.grantId, (s = new Set()));
      s.add(key);
    }
  }
  async find(id) { return get(this.key(id)); }
  async findByUid(uid) { const id = uidIndex.get(uid); return id ? this.find(id) : undefined; }
  async findByUserCode(code) { const id = userCodeIndex.get(code); return id ? this.find(id) : undefined; }
  async consume(id) { const p = get(this.key(id)); if (p) p.consumed = Math.floor(now() / 1000); }
  async destroy(id) {
    const key = this.key(id);
    const p = get(key);
    store.delete(key);
    if (p?.grantId) grantIndex.get(p.grantId)?.delete(key);
  }
  async revokeByGrantId(grantId) {
    const s = grantIndex.get(grantId);
    if (s) for (const key of s) store.delete(key);
    grantIndex.delete(grantId);
  }
}

// ---- client authentication scenario (BENCH_CLIENT_JWKS) -----------------------------
// For tests/benches/client_auth.rs with PEER_ISSUER: a client `bench-jwt` authenticating
// with private_key_jwt (its public keys given as a JWK Set in BENCH_CLIENT_JWKS), and DPoP
// turned on (no nonces, as Lanyard's default). Off unless asked for, so the other
// scenarios run the provider exactly as before.
const CLIENT_JWKS = process.env.BENCH_CLIENT_JWKS ? JSON.parse(process.env.BENCH_CLIENT_JWKS) : null;
const extraClients = CLIENT_JWKS ? [{
  client_id: 'bench-jwt',
  token_endpoint_auth_method: 'private_key_jwt',
  token_endpoint_auth_signing_alg: 'ES256',
  jwks: CLIENT_JWKS,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: RESOURCE_SCOPES,
}] : [];

// ---- provider ---------------------------------------------------------------------
const configuration = {
  adapter: BenchMapAdapter,
  jwks: loadOrCreateJwks(),
  clients: [{
    client_id: 'bench',
    client_secret: 'bench-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1:4000/cb'],
    scope: `openid offline_access ${RESOURCE_SCOPES}`,
  }, ...extraClients],
  scopes: ['openid', 'offline_access', ...RESOURCE_SCOPES.split(' ')],
  cookies: { keys: ['bench-cookie-key-not-secret-0123456789'] },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true },
    ...(CLIENT_JWKS ? { dPoP: { enabled: true } } : {}),
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        return {
          audience: RESOURCE,
          scope: RESOURCE_SCOPES,
          accessTokenTTL: 3600,
          accessTokenFormat: AT_FORMAT,
          ...(AT_FORMAT === 'jwt' ? { jwt: { sign: { alg: AT_ALG } } } : {}),
        };
      },
    },
  },
  ttl: {
    AccessToken: 3600,
    ClientCredentials: 3600,
    AuthorizationCode: 60,
    RefreshToken: 86400,
    IdToken: 3600,
    Interaction: 600,
    Session: 86400,
    Grant: 86400,
  },
  // Lanyard rotates every refresh token; the bench measures both doing the same.
  rotateRefreshToken: true,
};

const provider = new Provider(ISSUER, configuration);

// ---- bench-only minting (BENCH_MINT_PORT) ---------------------------------------------
// Tokens a user would hold after signing in, made without the interaction pages (the
// peer's set-up has none): refresh tokens for the rotation scenario, opaque user access
// tokens for introspection and userinfo. Same models, grants and adapter as a sign-in
// would use, so the endpoints under load do their full work. Served on a port of its own,
// on loopback, so that the provider's request path is exactly the unadapted one.
//
// `kind=session` makes what a browser holds after the bench user signed in and consented
// to the bench client: a Session (logged in as the user, its authorization for `bench`
// pointing at a saved Grant for `openid offline_access` and the resource's scopes) and the
// provider's session cookie for it, signed with `cookies.keys` by the provider's own cookie
// code (koa's `ctx.cookies`). The answer is `{"cookie": "_session=...; _session.sig=..."}`,
// a Cookie header value: /auth with it finds the session and the grant (the default
// `loadExistingGrant`), so it answers with a code at once, with no interaction.
if (process.env.BENCH_MINT_PORT) {
  const ACCOUNT = 'bench-user';
  const mint = async (kind, n) => {
    const client = await provider.Client.find('bench');
    const tokens = [];
    for (let i = 0; i < n; i += 1) {
      const grant = new provider.Grant({ accountId: ACCOUNT, clientId: 'bench' });
      grant.addOIDCScope('openid offline_access');
      grant.addResourceScope(RESOURCE, 'api:read');
      const grantId = await grant.save();
      const common = { accountId: ACCOUNT, client, grantId, gty: 'authorization_code' };
      if (kind === 'refresh') {
        const authTime = Math.floor(Date.now() / 1000);
        tokens.push(await new provider.RefreshToken({
          ...common, scope: 'openid offline_access api:read', resource: RESOURCE, authTime,
        }).save());
      } else {
        tokens.push(await new provider.AccessToken({ ...common, scope: 'openid' }).save());
      }
    }
    return tokens;
  };
  const session = async (req, res) => {
    const grant = new provider.Grant({ accountId: ACCOUNT, clientId: 'bench' });
    grant.addOIDCScope('openid offline_access');
    grant.addResourceScope(RESOURCE, RESOURCE_SCOPES);
    const grantId = await grant.save();
    const browser = new provider.Session();
    browser.loginAccount({ accountId: ACCOUNT });
    browser.grantIdFor('bench', grantId);
    browser.ensureClientContainer('bench');
    await browser.save(configuration.ttl.Session);
    // The provider's cookie code, with its keys: `_session` and its `_session.sig`.
    provider.createContext(req, res).cookies.set(provider.cookieName('session'), browser.id, { signed: true });
    let set = res.getHeader('set-cookie') ?? [];
    if (typeof set === 'string') set = [set];
    res.removeHeader('set-cookie');
    return { cookie: set.map((c) => c.split(';')[0]).join('; ') };
  };
  createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const kind = url.searchParams.get('kind');
    const n = Math.min(Number(url.searchParams.get('n')) || 1, 100_000);
    if (req.method !== 'POST' || url.pathname !== '/mint' || !['refresh', 'access', 'session'].includes(kind)) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"error":"POST /mint?kind=refresh|access&n=N or POST /mint?kind=session"}');
      return;
    }
    try {
      const answer = kind === 'session' ? await session(req, res) : await mint(kind, n);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    } catch (err) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(err) }));
    }
  }).listen(Number(process.env.BENCH_MINT_PORT), HOST);
}
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(PORT, HOST, () => {
  console.log(`oidc-provider ${AT_FORMAT} ${AT_ALG} listening on ${ISSUER} pid=${process.pid} node=${process.version} NODE_ENV=${process.env.NODE_ENV}`);
});
server.keepAliveTimeout = 65_000;
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
