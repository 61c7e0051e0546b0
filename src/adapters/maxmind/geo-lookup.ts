// GeoLookup over a local MaxMind-format country database (GeoLite2-Country, DB-IP country lite):
// read once at start, then looked up in memory; no file configured means no country. Nothing is
// ever downloaded here: operators place the .mmdb file and point TALLY_GEOIP_DB at it.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { Reader, type CountryResponse } from 'maxmind';
import { LruCache } from '../../core/collect/lru.ts';
import { noGeoLookup, type GeoLookup } from '../../core/ports/geo-lookup.ts';

/**
 * Decoded data records kept by offset: a country database has a few thousand distinct records,
 * and decoding one (a map with names in eight languages) costs more than the tree walk.
 */
const decodedRecordsMax = 10_000;
const countryCodePattern = /^[A-Z]{2}$/;
const ipv4MappedPrefix = '::ffff:';

/** Opens the database at `path`; a missing or unreadable file fails here, at start. */
export function openGeoLookup(path: string | null): GeoLookup {
  if (path === null || path === '') return noGeoLookup;
  return new MaxmindGeoLookup(readFileSync(path));
}

export class MaxmindGeoLookup implements GeoLookup {
  readonly #reader: Reader<CountryResponse>;
  readonly #ipVersion: number;

  constructor(database: Buffer) {
    this.#reader = new Reader<CountryResponse>(database, { cache: new LruCache<string | number, unknown>(decodedRecordsMax) });
    this.#ipVersion = this.#reader.metadata.ipVersion;
  }

  country(ip: string): string | null {
    const address = lookupAddress(ip);
    // The reader does not validate addresses, and an IPv4-only tree cannot answer IPv6.
    if (address === null || (address.version === 6 && this.#ipVersion === 4)) return null;
    const record = this.#reader.get(address.text);
    const code = record?.country?.iso_code ?? record?.registered_country?.iso_code;
    return code !== undefined && countryCodePattern.test(code) ? code : null;
  }
}

/** A valid address to look up; IPv4-mapped IPv6 (dual-stack sockets report these) as IPv4. */
function lookupAddress(ip: string): { text: string; version: 4 | 6 } | null {
  const lower = ip.toLowerCase();
  if (lower.startsWith(ipv4MappedPrefix)) {
    const tail = lower.slice(ipv4MappedPrefix.length);
    if (isIP(tail) === 4) return { text: tail, version: 4 };
  }
  const version = isIP(ip);
  if (version === 4) return { text: ip, version: 4 };
  // Zone ids (fe80::1%eth0) are link-local: no country either way.
  if (version === 6 && !ip.includes('%')) return { text: ip, version: 6 };
  return null;
}
