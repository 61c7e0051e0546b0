// Creating merchants: validated input, fresh keys (shown once, stored hashed). Shared by the
// admin API and `tally merchants create`.
import { randomBytes } from 'node:crypto';
import { TallyError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { Merchant, MerchantStore } from '../core/ports/merchant-store.ts';
import { hashKey, newKey } from '../http/auth.ts';

export interface MerchantInput {
  readonly name: string;
  readonly currency?: string;
  readonly allowedOrigins?: readonly string[];
}

export interface CreatedMerchant {
  readonly merchant: Merchant;
  readonly writeKey: string;
  readonly secretKey: string;
}

const currencies: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

export function validateMerchantInput(input: MerchantInput): Required<MerchantInput> {
  const name = input.name.trim();
  if (name.length === 0 || name.length > limits.merchantNameCharsMax) {
    throw new TallyError('invalid_merchant', `name must be 1–${limits.merchantNameCharsMax} characters`);
  }
  const currency = input.currency ?? 'USD';
  if (!currencies.has(currency)) throw new TallyError('invalid_merchant', `currency ${JSON.stringify(currency)} is not an ISO 4217 code`);
  const allowedOrigins = input.allowedOrigins ?? [];
  if (allowedOrigins.length > limits.allowedOriginsMax) throw new TallyError('invalid_merchant', `at most ${limits.allowedOriginsMax} allowed origins`);
  for (const origin of allowedOrigins) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(origin);
    } catch { /* reported below */ }
    if (!parsed || parsed.origin !== origin) throw new TallyError('invalid_merchant', `${JSON.stringify(origin)} is not an origin like https://shop.example`);
  }
  return { name, currency, allowedOrigins };
}

export async function createMerchant(store: MerchantStore, input: MerchantInput, nowMs: number): Promise<CreatedMerchant> {
  const valid = validateMerchantInput(input);
  const merchant: Merchant = { id: `mer_${randomBytes(8).toString('hex')}`, ...valid, createdMs: nowMs };
  const writeKey = newKey('write');
  const secretKey = newKey('secret');
  await store.create({ merchant, writeKeyHash: hashKey(writeKey), secretKeyHash: hashKey(secretKey) });
  return { merchant, writeKey, secretKey };
}

export function merchantView(merchant: Merchant): Record<string, unknown> {
  return {
    id: merchant.id,
    name: merchant.name,
    currency: merchant.currency,
    allowed_origins: merchant.allowedOrigins,
    created_at: new Date(merchant.createdMs).toISOString(),
  };
}
