// Drive the tokenward sandbox emulator with Plaid's official Node library (plaid-node).
//
// Usage: TOKENWARD_SANDBOX_URL=http://127.0.0.1:PORT CLIENT_ID=... SECRET=... node node_sdk.js
// Prints one line per step and never a token; exits non-zero on the first failure.
'use strict';

const { Configuration, PlaidApi, Products, CountryCode } = require('plaid');

const BASE = process.env.TOKENWARD_SANDBOX_URL;

function client(clientId, secret) {
  return new PlaidApi(
    new Configuration({
      basePath: BASE,
      baseOptions: {
        headers: {
          'PLAID-CLIENT-ID': clientId,
          'PLAID-SECRET': secret,
          'Plaid-Version': '2020-09-14',
        },
      },
    }),
  );
}

function step(name) {
  console.log(`ok ${name}`);
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

async function plaidError(call) {
  try {
    await call();
  } catch (e) {
    check(e.response && e.response.data, 'failure without a Plaid error body');
    const body = e.response.data;
    for (const field of ['error_type', 'error_code', 'error_message', 'display_message', 'request_id']) {
      check(field in body, `error body lacks ${field}`);
    }
    return { status: e.response.status, body };
  }
  throw new Error('call succeeded but should have failed');
}

async function main() {
  const api = client(process.env.CLIENT_ID, process.env.SECRET);

  const link = await api.linkTokenCreate({
    user: { client_user_id: 'user-1' },
    client_name: 'tokenward compat',
    products: [Products.Transactions],
    country_codes: [CountryCode.Us],
    language: 'en',
  });
  check(link.data.link_token.startsWith('link-sandbox-'), 'link token format');
  step('linkTokenCreate');

  const pub = await api.sandboxPublicTokenCreate({
    institution_id: 'ins_109508',
    initial_products: [Products.Transactions],
  });
  check(pub.data.public_token.startsWith('public-sandbox-'), 'public token format');
  step('sandboxPublicTokenCreate');

  const exchange = await api.itemPublicTokenExchange({ public_token: pub.data.public_token });
  const token = exchange.data.access_token;
  check(token.startsWith('access-sandbox-'), 'access token format');
  step('itemPublicTokenExchange');

  const accounts = await api.accountsGet({ access_token: token });
  check(accounts.data.accounts.length > 0, 'no accounts');
  check(accounts.data.item.item_id === exchange.data.item_id, 'item id');
  step(`accountsGet (${accounts.data.accounts.length} accounts)`);

  const balances = await api.accountsBalanceGet({ access_token: token });
  check(balances.data.accounts.length === accounts.data.accounts.length, 'balances');
  step('accountsBalanceGet');

  const end = new Date().toISOString().slice(0, 10);
  const start = new Date(Date.now() - 90 * 86400e3).toISOString().slice(0, 10);
  const got = await api.transactionsGet({
    access_token: token,
    start_date: start,
    end_date: end,
    options: { count: 50, offset: 0 },
  });
  check(got.data.transactions.length > 0, 'no transactions');
  step(`transactionsGet (${got.data.transactions.length} of ${got.data.total_transactions})`);

  let cursor = '';
  let added = 0;
  let pages = 0;
  for (;;) {
    const page = await api.transactionsSync({ access_token: token, cursor, count: 100 });
    added += page.data.added.length;
    cursor = page.data.next_cursor;
    pages += 1;
    if (!page.data.has_more) break;
    check(pages < 1000, 'transactionsSync never ends');
  }
  step(`transactionsSync (${added} added over ${pages} pages)`);

  const item = await api.itemGet({ access_token: token });
  check(item.data.item.item_id === exchange.data.item_id, 'item id');
  step('itemGet');

  const fresh = await api.itemAccessTokenInvalidate({ access_token: token });
  const newToken = fresh.data.new_access_token;
  check(newToken !== token && newToken.startsWith('access-sandbox-'), 'new token');
  const old = await plaidError(() => api.itemGet({ access_token: token }));
  check(old.status === 400 && old.body.error_code === 'INVALID_ACCESS_TOKEN', 'old token accepted');
  step('itemAccessTokenInvalidate (old token rejected)');

  await api.itemRemove({ access_token: newToken });
  step('itemRemove');

  const bad = await plaidError(() =>
    client(process.env.CLIENT_ID, 'wrong-secret-0000000000000000').itemGet({ access_token: newToken }),
  );
  check(bad.body.error_type === 'INVALID_INPUT' && bad.body.error_code === 'INVALID_API_KEYS', 'bad keys accepted');
  step('bad credentials (INVALID_API_KEYS)');
}

main().catch((e) => {
  // The message is ours (check) or axios' (no request data); never print the error object,
  // which carries the request config with its headers.
  console.log(`FAIL ${e && e.message ? e.message : 'unknown error'}`);
  process.exit(1);
});
