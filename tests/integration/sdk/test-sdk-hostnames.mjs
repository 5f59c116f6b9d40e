// Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
//
// test-sdk-hostnames.mjs: the custom hostname routes of keycustody-http driven by the official
// Cloudflare TypeScript SDK (npm `cloudflare` v7) (issue 4). Needs KC_HTTP_URL, KC_ZONE,
// KC_TOKEN (write) and KC_CA_DIR, which holds inter.pem and inter.key: an intermediate CA
// that the daemon trusts (its root is the daemon's trust_bundle). The CSR is signed with the
// openssl command, as a customer's CA would.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Cloudflare, { BadRequestError, ConflictError, NotFoundError } from 'cloudflare';

const url = process.env.KC_HTTP_URL;
const zone_id = process.env.KC_ZONE;
const token = process.env.KC_TOKEN;
const ca = process.env.KC_CA_DIR;
if (!url || !zone_id || !token || !ca) {
	console.error('KC_HTTP_URL, KC_ZONE, KC_TOKEN and KC_CA_DIR are required');
	process.exit(2);
}

const client = new Cloudflare({ apiToken: token, baseURL: url, maxRetries: 0 });
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const work = mkdtempSync(join(tmpdir(), 'kc-sdk-'));
let checks = 0;

// The intermediate signs csrPem for the DNS names given; returns leaf + intermediate.
function sign(csrPem, names, serial) {
	const csr = join(work, `${serial}.csr`), ext = join(work, `${serial}.ext`);
	const out = join(work, `${serial}.pem`);
	writeFileSync(csr, csrPem);
	writeFileSync(ext, 'basicConstraints=critical,CA:FALSE\n' +
	    'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' +
	    `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`);
	execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', join(ca, 'inter.pem'),
	    '-CAkey', join(ca, 'inter.key'), '-set_serial', String(serial), '-days', '30',
	    '-sha256', '-extfile', ext, '-out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
	return readFileSync(out, 'utf8') + readFileSync(join(ca, 'inter.pem'), 'utf8');
}

// A custom CSR, signed by the customer's CA.
const csr = await client.customCsrs.create({
	zone_id, country: 'US', state: 'MA', locality: 'Boston', organization: 'City of Boston',
	common_name: 'store.acme-corp.co.uk',
	sans: ['store.acme-corp.co.uk', 'cart.acme-corp.co.uk'], key_type: 'p256v1',
});
const chain = sign(csr.csr, ['store.acme-corp.co.uk', 'cart.acme-corp.co.uk'], 7001);

// create with ssl.custom_csr_id + ssl.custom_certificate
const hn = await client.customHostnames.create({
	zone_id, hostname: 'store.acme-corp.co.uk',
	ssl: { custom_csr_id: csr.id, custom_certificate: chain, method: 'http', type: 'dv' },
});
assert.match(hn.id, uuid);
assert.equal(hn.hostname, 'store.acme-corp.co.uk');
assert.equal(hn.status, undefined);	// nothing verified or deployed: no status (API.md)
assert.equal(hn.ssl.status, 'active');
assert.equal(hn.ssl.custom_csr_id, csr.id);
assert.equal(hn.ssl.serial_number, '7001');
assert.equal(hn.ssl.signature, 'SHA256WithRSA');
assert.equal(hn.ssl.issuer, 'AcmeCorpIssuing');
assert.equal(hn.ssl.bundle_method, 'ubiquitous');
assert.deepEqual(hn.ssl.hosts, ['store.acme-corp.co.uk', 'cart.acme-corp.co.uk']);
// the upload echoed as uploaded; the chain built from it is the certificate_chain extension
assert.equal(hn.ssl.custom_certificate, chain);
assert.equal(hn.ssl.certificate_chain, chain);
assert.equal(hn.ssl.certificate_authority, undefined);
assert.match(hn.ssl.uploaded_on, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
assert.match(hn.ssl.expires_on, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
assert.equal(hn.zone_id, undefined);
checks++;
const hn2 = await client.customHostnames.create({
	zone_id, hostname: 'cart.acme-corp.co.uk',
	ssl: { custom_csr_id: csr.id, custom_certificate: chain, bundle_method: 'force' },
});
assert.equal(hn2.ssl.bundle_method, 'force');
checks++;

// get, list (auto-paginating), edit (renewal)
const got = await client.customHostnames.get(hn.id, { zone_id });
assert.deepEqual(got, hn);
checks++;
const seen = [];
for await (const h of client.customHostnames.list({ zone_id, per_page: 5 }))
	seen.push(h.id);
assert.ok(seen.includes(hn.id) && seen.includes(hn2.id), `list saw ${seen}`);
checks++;
const renewed = await client.customHostnames.edit(hn.id, {
	zone_id,
	ssl: { custom_certificate: sign(csr.csr, ['store.acme-corp.co.uk'], 7002) },
});
assert.equal(renewed.id, hn.id);
assert.equal(renewed.ssl.serial_number, '7002');
assert.deepEqual(renewed.ssl.hosts, ['store.acme-corp.co.uk']);
checks++;

// edit with each partial body (issue 13 point 3): what is sent changes, nothing else
const unchanged = (a, b, top = [], ssl = []) => {
	const strip = (o) => {
		const c = structuredClone(o);
		for (const k of top) delete c[k];
		for (const k of ssl) delete c.ssl[k];
		return c;
	};
	assert.deepEqual(strip(a), strip(b));
};
let cur = renewed;
const partials = [
	[{ custom_metadata: { customer_id: '12345', tier: 'gold' } }, ['custom_metadata'], [],
		(h) => assert.deepEqual(h.custom_metadata, { customer_id: '12345', tier: 'gold' })],
	[{ custom_origin_server: 'origin.acme-corp.co.uk' }, ['custom_origin_server'], [],
		(h) => assert.equal(h.custom_origin_server, 'origin.acme-corp.co.uk')],
	[{ custom_origin_sni: 'sni.acme-corp.co.uk' }, ['custom_origin_sni'], [],
		(h) => assert.equal(h.custom_origin_sni, 'sni.acme-corp.co.uk')],
	[{ ssl: { bundle_method: 'optimal' } }, [], ['bundle_method'],
		(h) => assert.equal(h.ssl.bundle_method, 'optimal')],
	[{ ssl: { certificate_authority: 'lets_encrypt' } }, [], ['certificate_authority'],
		(h) => assert.equal(h.ssl.certificate_authority, 'lets_encrypt')],
	[{ ssl: { method: 'txt', type: 'dv' } }, [], ['method'],
		(h) => assert.equal(h.ssl.method, 'txt')],
	[{ ssl: { method: 'http', type: 'dv', wildcard: false,
		settings: { min_tls_version: '1.2', http2: 'on' } } }, [], ['method', 'wildcard', 'settings'],
		(h) => {
			assert.equal(h.ssl.method, 'http');
			assert.equal(h.ssl.wildcard, false);
			assert.deepEqual(h.ssl.settings, { min_tls_version: '1.2', http2: 'on' });
		}],
];
for (const [body, top, ssl, check] of partials) {
	const h = await client.customHostnames.edit(hn.id, { zone_id, ...body });
	check(h);
	unchanged(h, cur, top, ssl);
	assert.deepEqual(await client.customHostnames.get(hn.id, { zone_id }), h);
	cur = h;
	checks++;
}
for (const [ssl, code] of [[{ method: 'carrier-pigeon', type: 'dv' }, 1432],
    [{ method: 'http', type: 'ev' }, 1433], [{ certificate_authority: 'digicert' }, 1434],
    [{ bundle_method: 'fastest' }, 1449]]) {
	await assert.rejects(client.customHostnames.edit(hn.id, { zone_id, ssl }), (e) => {
		assert.ok(e instanceof BadRequestError, `${code}: got ${e?.constructor?.name}`);
		assert.equal(e.errors[0].code, code);
		return true;
	});
	checks++;
}
// list with filters echoes the same object, every field included
const byName = [];
for await (const h of client.customHostnames.list({ zone_id, hostname: { exact: 'Store.Acme-Corp.co.uk' } }))
	byName.push(h);
assert.deepEqual(byName, [cur]);
checks++;
const byId = [];
for await (const h of client.customHostnames.list({ zone_id, id: hn.id }))
	byId.push(h);
assert.deepEqual(byId, [cur]);
checks++;
// custom_origin_server: exact, folded as stored (cur's was set by a partial edit above)
const byOrigin = [];
for await (const h of client.customHostnames.list({ zone_id, custom_origin_server: 'Origin.Acme-Corp.co.uk' }))
	byOrigin.push(h);
assert.deepEqual(byOrigin, [cur]);
const otherOrigin = [];
for await (const h of client.customHostnames.list({ zone_id, custom_origin_server: 'other.acme-corp.co.uk' }))
	otherOrigin.push(h);
assert.deepEqual(otherOrigin, []);
checks++;

// every other filter and order of the SDK's list, each checked against what it must select
const ids = async (params) => {
	const out = [];
	for await (const h of client.customHostnames.list({ zone_id, per_page: 5, ...params }))
		out.push(h.id);
	return out;
};
const both = [hn.id, hn2.id];
for (const [params, want] of [
	[{ hostname: { contain: 'ACME-CORP' } }, both],
	[{ hostname: { contain: 'cart' } }, [hn2.id]],
	[{ hostname: { startsWith: 'store.' } }, [hn.id]],
	[{ hostname: { startsWith: 'acme' } }, []],
	[{ hostname: { contain: 'acme', startsWith: 'cart' } }, [hn2.id]],
	[{ hostname: { exact: 'store.acme-corp.co.uk.', contain: 'cart' } }, []],
	[{ ssl: 1 }, both],
	[{ ssl: 0 }, []],
	[{ ssl_status: 'active' }, both],
	[{ ssl_status: 'expired' }, []],
	[{ ssl_status: 'pending_validation' }, []],
	[{ wildcard: false }, both],
	[{ wildcard: true }, []],
	[{ certificate_authority: 'lets_encrypt' }, [hn.id]],
	[{ certificate_authority: 'google' }, []],
	[{ order: 'ssl_status' }, both],
	[{ order: 'ssl', direction: 'desc' }, [hn2.id, hn.id]],
	[{ direction: 'desc' }, [hn2.id, hn.id]],
	[{ id: hn2.id }, [hn2.id]],
]) {
	assert.deepEqual(await ids(params), want, JSON.stringify(params));
	checks++;
}
for (const [params, code] of [
	[{ id: hn.id, hostname: { exact: 'store.acme-corp.co.uk' } }, 1438],
	[{ id: hn.id, ssl: 1 }, 1438],
	[{ id: 'not-a-uuid' }, 1435],
	[{ hostname_status: 'active' }, 1437],
	[{ hostname: { contain: 'store_' } }, 1437],
	[{ ssl_status: 'bogus' }, 1437],
	[{ certificate_authority: 'digicert' }, 1437],
]) {
	await assert.rejects(ids(params), (e) => {
		assert.ok(e instanceof BadRequestError, `${JSON.stringify(params)}: got ${e?.constructor?.name}`);
		assert.equal(e.errors[0].code, code, JSON.stringify(params));
		assert.match(e.errors[0].message, /Check your input and try again\.$/);
		return true;
	});
	checks++;
}

// a rejected upload surfaces as BadRequestError with the API code in errors
const rejected = [
	[{ custom_csr_id: csr.id, custom_certificate: 'not a certificate' }, 1426],
	[{ custom_csr_id: csr.id, custom_certificate: '' }, 1427],
	[{ custom_csr_id: 'nope', custom_certificate: chain }, 1430],
	[{ custom_csr_id: csr.id, custom_certificate: chain, custom_key: 'k' }, 1434],
	[{ custom_csr_id: csr.id, custom_certificate: chain, bundle_method: 'fast' }, 1449],
];
for (const [ssl, code] of rejected) {
	await assert.rejects(client.customHostnames.create({
		zone_id, hostname: 'cart.acme-corp.co.uk', ssl }), (e) => {
		assert.ok(e instanceof BadRequestError, `${code}: got ${e?.constructor?.name}`);
		assert.equal(e.status, 400);
		assert.equal(e.errors[0].code, code);
		return true;
	});
	checks++;
}
await assert.rejects(client.customHostnames.create({
	zone_id, hostname: 'other.acme-corp.co.uk',
	ssl: { custom_csr_id: csr.id, custom_certificate: chain } }), (e) => {
	assert.ok(e instanceof BadRequestError);
	assert.equal(e.errors[0].code, 1446);
	assert.match(e.errors[0].message, /other\.acme-corp\.co\.uk/);
	return true;
});
checks++;
await assert.rejects(client.customHostnames.create({
	zone_id, hostname: 'cart.acme-corp.co.uk',
	ssl: { custom_csr_id: csr.id, custom_certificate: chain } }), (e) => {
	assert.ok(e instanceof ConflictError, `got ${e?.constructor?.name}`);
	assert.equal(e.errors[0].code, 1406);
	return true;
});
checks++;

// the zone's fallback origin (issue 13): none, set (folded), replaced, refused, deleted
const fo = client.customHostnames.fallbackOrigin;
const usTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const notFound = (e) => {
	assert.ok(e instanceof NotFoundError, `got ${e?.constructor?.name}`);
	assert.equal(e.errors[0].code, 1551);
	return true;
};
await assert.rejects(fo.get({ zone_id }), notFound);
checks++;
const set = await fo.update({ zone_id, origin: 'Origin.Acme-Corp.co.uk' });
assert.equal(set.origin, 'origin.acme-corp.co.uk');
assert.equal(set.status, 'active');
assert.deepEqual(set.errors, []);
assert.match(set.created_at, usTime);
assert.equal(set.updated_at, set.created_at);
assert.deepEqual(await fo.get({ zone_id }), set);
checks++;
await new Promise((r) => setTimeout(r, 5));
const moved = await fo.update({ zone_id, origin: 'fallback.acme-corp.co.uk' });
assert.equal(moved.origin, 'fallback.acme-corp.co.uk');
assert.equal(moved.created_at, set.created_at);
assert.ok(moved.updated_at > set.created_at, `updated_at ${moved.updated_at}`);
checks++;
for (const [origin, code] of [['*.acme-corp.co.uk', 1420], ['fallback.example.com', 1419],
    ['origin.test', 1417], ['192.0.2.1', 1415], ['', 1415]]) {
	await assert.rejects(fo.update({ zone_id, origin }), (e) => {
		assert.ok(e instanceof BadRequestError, `${origin}: got ${e?.constructor?.name}`);
		assert.equal(e.errors[0].code, code, origin);
		return true;
	});
	checks++;
}
assert.deepEqual(await fo.get({ zone_id }), moved);
const gone = await fo.delete({ zone_id });
assert.deepEqual(gone, { origin: moved.origin, created_at: moved.created_at,
	updated_at: moved.updated_at, errors: [] });
checks++;
await assert.rejects(fo.get({ zone_id }), notFound);
await assert.rejects(fo.delete({ zone_id }), notFound);
checks++;

// the typed calls of routes this service does not serve: Cloudflare's routing error (7003),
// never "hostname not found". quota: no per-zone allocation exists here to report;
// certificate_pack certificates: they carry a custom_key, and keys never enter from outside.
const unserved = (e) => {
	assert.ok(e instanceof BadRequestError, `got ${e?.constructor?.name}`);
	assert.equal(e.status, 400);
	assert.equal(e.errors[0].code, 7003);
	return true;
};
await assert.rejects(client.customHostnames.quota.get({ zone_id }), unserved);
checks++;
const pack = { zone_id, custom_hostname_id: hn.id, certificate_pack_id: cur.ssl.id };
await assert.rejects(client.customHostnames.certificatePack.certificates.update(
    '0b6a4d6e-1b4c-4f6a-9d3e-2a1b0c9d8e7f', { ...pack, custom_certificate: chain,
    custom_key: '-----BEGIN PRIVATE KEY-----\n' }), unserved);
await assert.rejects(client.customHostnames.certificatePack.certificates.delete(
    '0b6a4d6e-1b4c-4f6a-9d3e-2a1b0c9d8e7f', pack), unserved);
assert.deepEqual(await client.customHostnames.get(hn.id, { zone_id }), cur);
checks++;

// the CSR is in use; delete (bare {"id"} body), then the CSR goes
await assert.rejects(client.customCsrs.delete(csr.id, { zone_id }), (e) => {
	assert.ok(e instanceof ConflictError);
	assert.equal(e.errors[0].code, 1420);
	return true;
});
checks++;
for (const h of [hn, hn2]) {
	const del = await client.customHostnames.delete(h.id, { zone_id });
	assert.deepEqual(del, { id: h.id });
	checks++;
}
await assert.rejects(client.customHostnames.get(hn.id, { zone_id }), (e) => {
	assert.ok(e instanceof NotFoundError, `got ${e?.constructor?.name}`);
	assert.equal(e.errors[0].code, 1436);
	return true;
});
checks++;
assert.equal((await client.customCsrs.delete(csr.id, { zone_id })).id, csr.id);
checks++;
console.log(`sdk hostnames: ${checks} checks passed`);
