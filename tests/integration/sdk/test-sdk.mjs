// Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
//
// test-sdk.mjs: keycustody-http driven by the official Cloudflare TypeScript SDK (npm
// `cloudflare` v7), pointed at the shim with baseURL (issue 3). Needs KC_HTTP_URL, KC_ZONE
// (an empty zone: the list must see exactly what this test created) and KC_TOKEN (write).
// Every CSR is written to $KC_SDK_OUT/<id>.pem for `openssl req -verify` by the caller.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import Cloudflare, { NotFoundError, BadRequestError } from 'cloudflare';

const url = process.env.KC_HTTP_URL;
const zone_id = process.env.KC_ZONE;
const token = process.env.KC_TOKEN;
const out = process.env.KC_SDK_OUT;
if (!url || !zone_id || !token || !out) {
	console.error('KC_HTTP_URL, KC_ZONE, KC_TOKEN and KC_SDK_OUT are required');
	process.exit(2);
}

const client = new Cloudflare({ apiToken: token, baseURL: url, maxRetries: 0 });
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const base = {
	zone_id,
	country: 'US',
	state: 'MA',
	locality: 'Boston',
	organization: 'City of Boston',
	common_name: 'app.acme-corp.co.uk',
	sans: ['app.acme-corp.co.uk', 'www.acme-corp.co.uk'],
};
let checks = 0;
function save(csr) {
	assert.match(csr.id, uuid);
	assert.match(csr.csr, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
	writeFileSync(`${out}/${csr.id}.pem`, csr.csr);
	checks++;
}

// create, both key types of the original API
const ids = [];
for (const key_type of ['rsa2048', 'p256v1']) {
	const csr = await client.customCsrs.create({ ...base, key_type });
	assert.equal(csr.key_type, key_type);
	assert.equal(csr.common_name, base.common_name);
	assert.deepEqual(csr.sans, base.sans);
	assert.equal(csr.zone_id, undefined);
	assert.match(csr.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
	save(csr);
	ids.push(csr.id);
}
// the last two named, in the reverse of their creation order, for order=name
const names = { 10: 'zeta', 11: 'alpha' };
for (let i = ids.length; i < 12; i++) {
	const csr = await client.customCsrs.create({
		...base, key_type: 'p256v1', common_name: `h${i}.acme-corp.co.uk`,
		sans: [`h${i}.acme-corp.co.uk`], ...(names[i] ? { name: names[i] } : {}),
	});
	if (names[i])
		assert.equal(csr.name, names[i]);
	save(csr);
	ids.push(csr.id);
}

// list, auto-paginating over pages of 5: exactly the 12, each once, in creation order
const seen = [];
for await (const csr of client.customCsrs.list({ zone_id, per_page: 5 }))
	seen.push(csr.id);
assert.equal(seen.length, 12, `list saw ${seen.length} CSRs`);
assert.deepEqual([...seen].sort(), [...ids].sort());
checks++;
// the list's order and direction: created_at (the default), name (unnamed first), desc
const listed = async (params) => {
	const v = [];
	for await (const csr of client.customCsrs.list({ zone_id, per_page: 5, ...params }))
		v.push(csr.id);
	return v;
};
assert.deepEqual(seen, ids);
assert.deepEqual(await listed({ order: 'created_at' }), ids);
assert.deepEqual(await listed({ order: 'created_at', direction: 'desc' }), [...ids].reverse());
assert.deepEqual(await listed({ order: 'name' }), [...ids.slice(0, 10), ids[11], ids[10]]);
assert.deepEqual(await listed({ order: 'name', direction: 'desc' }),
    [ids[10], ids[11], ...ids.slice(0, 10).reverse()]);
checks++;
await assert.rejects(listed({ order: 'account_tag' }), (e) => {
	assert.ok(e instanceof BadRequestError, `got ${e?.constructor?.name}`);
	assert.equal(e.errors[0].code, 6008);
	return true;
});
await assert.rejects(listed({ direction: 'up' }), (e) => e instanceof BadRequestError &&
    e.errors[0].code === 6008);
checks++;
const page = await client.customCsrs.list({ zone_id, per_page: 5, page: 3 });
assert.equal(page.result.length, 2);
assert.equal(page.result_info.total_count, 12);
assert.equal(page.result_info.total_pages, 3);
checks++;

// get
const got = await client.customCsrs.get(ids[1], { zone_id });
assert.equal(got.id, ids[1]);
assert.equal(got.key_type, 'p256v1');
checks++;

// delete, then a 404 reaches the SDK as NotFoundError with the API code
const del = await client.customCsrs.delete(ids[0], { zone_id });
assert.equal(del.id, ids[0]);
checks++;
await assert.rejects(client.customCsrs.get(ids[0], { zone_id }), (e) => {
	assert.ok(e instanceof NotFoundError, `got ${e?.constructor?.name}`);
	assert.equal(e.status, 404);
	assert.equal(e.errors[0].code, 1419);
	return true;
});
checks++;
await assert.rejects(client.customCsrs.delete(ids[0], { zone_id }), NotFoundError);
checks++;

// a 400 reaches the SDK as BadRequestError, without retries
await assert.rejects(client.customCsrs.get('not-a-uuid', { zone_id }), (e) => {
	assert.ok(e instanceof BadRequestError);
	assert.equal(e.errors[0].code, 1418);
	return true;
});
checks++;
await assert.rejects(client.customCsrs.list({ zone_id, per_page: 4 }).then((p) => p),
    (e) => e instanceof BadRequestError && e.errors[0].code === 6008);
checks++;

const after = [];
for await (const csr of client.customCsrs.list({ zone_id, per_page: 5 }))
	after.push(csr.id);
assert.equal(after.length, 11);
checks++;
console.log(`sdk: ${checks} checks passed`);
