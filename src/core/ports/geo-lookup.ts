// GeoLookup port: IP address → country, for the `visit:country` dimension. The IP itself is
// never stored; adapters read a local database (no network calls on the event path).

export interface GeoLookup {
  /** ISO 3166-1 alpha-2 code (e.g. "DE"), or null when unknown or the address is invalid. */
  country(ip: string): string | null;
}

/** The lookup when no database is configured: every country is unknown. */
export const noGeoLookup: GeoLookup = Object.freeze({ country: (): string | null => null });
