import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaxmindGeoLookup, openGeoLookup } from '../../../src/adapters/maxmind/geo-lookup.ts';
import { noGeoLookup } from '../../../src/core/ports/geo-lookup.ts';
import { writeMmdb, type MmdbNetwork } from '../../support/mmdb-writer.ts';

const networks: MmdbNetwork[] = [
  // GeoLite2 records carry names in several languages; the lookup needs only iso_code.
  { address: '81.2.69.0', prefixLength: 24, data: { country: { iso_code: 'GB', names: { en: 'United Kingdom', de: 'Vereinigtes Königreich' } } } },
  // A narrower network inside the one above wins for its addresses.
  { address: '81.2.69.128', prefixLength: 25, data: { country: { iso_code: 'IE' } } },
  // Anonymous proxies and the like have only a registered country.
  { address: '198.51.100.0', prefixLength: 24, data: { registered_country: { iso_code: 'US' } } },
  { address: '192.0.2.0', prefixLength: 24, data: { country: { iso_code: 'not-a-code' } } },
];

describe('MaxMind geo lookup (IPv4 tree)', () => {
  const geo = new MaxmindGeoLookup(writeMmdb({ ipVersion: 4, networks }));

  test('an address inside a network gets its country', () => {
    assert.equal(geo.country('81.2.69.1'), 'GB');
    assert.equal(geo.country('81.2.69.127'), 'GB');
  });

  test('the most specific network wins', () => {
    assert.equal(geo.country('81.2.69.128'), 'IE');
    assert.equal(geo.country('81.2.69.255'), 'IE');
  });

  test('an address outside every network is unknown', () => {
    assert.equal(geo.country('81.2.70.1'), null);
    assert.equal(geo.country('8.8.8.8'), null);
  });

  test('the registered country stands in when there is no country', () => {
    assert.equal(geo.country('198.51.100.7'), 'US');
  });

  test('a record whose code is not two capital letters is unknown', () => {
    assert.equal(geo.country('192.0.2.1'), null);
  });

  test('IPv4-mapped IPv6 is looked up as IPv4; other IPv6 is unknown in an IPv4 tree', () => {
    assert.equal(geo.country('::ffff:81.2.69.1'), 'GB');
    assert.equal(geo.country('::FFFF:81.2.69.200'), 'IE');
    assert.equal(geo.country('2001:db8::1'), null);
  });

  test('invalid addresses are unknown, never an error', () => {
    for (const ip of ['', 'bogus', '81.2.69', '81.2.69.256', '999.1.1.1', '1.2.3.4.5', ':::', 'fe80::1%eth0']) {
      assert.equal(geo.country(ip), null, ip);
    }
  });

  test('repeated lookups give the same answer (decoded records are cached)', () => {
    for (let round = 0; round < 3; round++) assert.equal(geo.country('81.2.69.1'), 'GB');
  });
});

describe('MaxMind geo lookup (IPv6 tree)', () => {
  const geo = new MaxmindGeoLookup(writeMmdb({
    ipVersion: 6,
    networks: [...networks, { address: '2a02:8000::', prefixLength: 20, data: { country: { iso_code: 'DE' } } }],
  }));

  test('IPv4 addresses are found where IPv6 databases keep them', () => {
    assert.equal(geo.country('81.2.69.1'), 'GB');
    assert.equal(geo.country('81.2.69.200'), 'IE');
    assert.equal(geo.country('::ffff:81.2.69.1'), 'GB');
  });

  test('IPv6 networks are found', () => {
    assert.equal(geo.country('2a02:8000::1'), 'DE');
    assert.equal(geo.country('2a02:8fff:ffff::1'), 'DE');
    assert.equal(geo.country('2a02:9000::1'), null);
  });
});

describe('openGeoLookup', () => {
  let directory = '';
  before(() => {
    directory = mkdtempSync(join(tmpdir(), 'tally-geo-'));
  });
  after(() => rmSync(directory, { recursive: true, force: true }));

  test('no configured file means no country lookup', () => {
    assert.equal(openGeoLookup(null), noGeoLookup);
    assert.equal(openGeoLookup(''), noGeoLookup);
    assert.equal(noGeoLookup.country('81.2.69.1'), null);
  });

  test('opens a configured .mmdb file', () => {
    const path = join(directory, 'country.mmdb');
    writeFileSync(path, writeMmdb({ ipVersion: 6, networks }));
    assert.equal(openGeoLookup(path).country('81.2.69.1'), 'GB');
  });

  test('a missing file or one that is not a MaxMind database fails at open', () => {
    assert.throws(() => openGeoLookup(join(directory, 'missing.mmdb')), /ENOENT/);
    const junk = join(directory, 'junk.mmdb');
    writeFileSync(junk, 'not a database');
    assert.throws(() => openGeoLookup(junk));
  });
});
