// A real OpenID provider for the tests (tests/security/test_oidc.py): the npm package
// oidc-provider (OpenID Certified), on 127.0.0.1 only, on a free port it picks itself.
//
//   node server.mjs CONFIG.json
//
// CONFIG.json: {"client_id", "client_secret", "redirect_uris", "accounts_file"}. The accounts
// file ({"<sub>": {"preferred_username", "email", "groups": [...]}, ...}) is read again at every
// sign-in, so that a test can take a user out of a group between two sign-ins, as a directory
// admin would.
//
// Prints one line, {"issuer": "http://127.0.0.1:<port>"}, once it is listening; exits when its
// standard input closes (the test process that started it ended, whichever way) or on SIGTERM.
// The sign-in form is the package's own development interaction (any password is accepted:
// the provider's user store is not what is under test, the protocol is).

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function accounts() {
  return JSON.parse(readFileSync(config.accounts_file, 'utf8'));
}

// A fresh RS256 signing key at every start: the relying party must fetch it from the JWKS
// endpoint, as it does from Entra ID, Keycloak or Google.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };

// The port first (a free one, chosen by the system), then the provider: its issuer carries it.
const server = createServer();
await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: config.redirect_uris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name', 'given_name', 'family_name'],
    groups: ['groups'],
  },
  // Groups in the ID token too (as Entra ID sends them), and in the userinfo answer.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, sub) {
    if (!(sub in accounts())) return undefined;
    return {
      accountId: sub,
      async claims() {
        const account = accounts()[sub];  // read again: the groups as they are now
        return { sub, email_verified: true, ...account };
      },
    };
  },
  // Our client is first-party: no consent screen, as a hospital's IdP is set up for its own
  // applications (Entra ID "admin consent", Keycloak "consent required: off").
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
    await grant.save();
    return grant;
  },
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);

// Idle keep-alive connections would hold close() open for seconds: end them too.
const stop = () => { server.close(() => process.exit(0)); server.closeAllConnections(); };
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
