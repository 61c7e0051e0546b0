// The payments API (a merchant's secret key): accounts, transfers and their status. A transfer is
// accepted (202) only once its command is durably in the log; the ledger processor decides it, and
// `?wait_ms=` lets a client wait for that decision (200 once decided). POSTs honour Stripe-style
// Idempotency-Key headers (required on transfers; see idempotency.ts for how concurrent retries
// agree). A replay answers with the same account or transfer as it is now: a transfer accepted as
// pending may be replayed decided, never as another transfer.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TallyError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { IdempotencyRecord, LedgerStore } from '../core/ports/ledger-store.ts';
import type { Account, Transfer, TransferCommand } from '../core/payments/ledger.ts';
import type { Merchant } from '../core/ports/merchant-store.ts';
import { createUuidV7Generator } from '../core/collect/index.ts';
import { KeyResolver } from '../http/auth.ts';
import { errorBody } from '../http/errors.ts';
import { RateLimiter } from '../http/rate-limit.ts';
import type { Services } from '../app/services.ts';
import { completeClaim, IdempotencyKeys, requestHash, type IdempotentRequest } from './idempotency.ts';
import {
  accountIdPattern, idempotencyKeyOf, parseAccountBody, parsePageQuery, parseTransferBody, parseWaitQuery, transferIdPattern,
} from './requests.ts';
import { TransferDesk } from './transfers.ts';
import { accountFromView, accountView, commandFromView, pendingTransfer, transferView, type AccountView, type TransferView } from './views.ts';

const bodyOptions = { bodyLimit: limits.paymentsBodyBytesMax };

export async function paymentsRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const ledger = services.ledger;
  const keys = new KeyResolver(services.merchants);
  const limiter = new RateLimiter(services.config.rateLimitPerSecond, services.now);
  const authorize = async (request: FastifyRequest): Promise<Merchant> => {
    const merchant = await keys.resolve(request, 'secret');
    limiter.take(`secret:${merchant.id}`);
    return merchant;
  };
  const newId = createUuidV7Generator(services.now, (count) => randomBytes(count));
  const idempotency = new IdempotencyKeys(ledger, services.now);
  const desk = new TransferDesk(ledger, services.log);
  const accounts = new AccountRoutes(ledger, idempotency, services.now, newId);
  const transfers = new TransferRoutes(ledger, desk, idempotency, services.now, newId);

  app.post('/v1/accounts', bodyOptions, async (request, reply) => accounts.create(await authorize(request), request, reply));
  app.get('/v1/accounts', async (request) => {
    const merchant = await authorize(request);
    const page = parsePageQuery(request.query, accountIdPattern);
    const found = await ledger.listAccounts({ merchantId: merchant.id, limit: page.limit, startingAfter: page.startingAfter });
    return { object: 'list', url: '/v1/accounts', data: found.items.map(accountView), has_more: found.hasMore };
  });
  app.get<{ Params: { id: string } }>('/v1/accounts/:id', async (request) => accountView(await accountOf(ledger, (await authorize(request)).id, request.params.id)));
  app.get<{ Params: { id: string } }>('/v1/accounts/:id/transfers', async (request) => {
    const merchant = await authorize(request);
    const account = await accountOf(ledger, merchant.id, request.params.id);
    const page = parsePageQuery(request.query, transferIdPattern);
    const found = await ledger.listAccountTransfers({ merchantId: merchant.id, accountId: account.id, limit: page.limit, startingAfter: page.startingAfter });
    return { object: 'list', url: `/v1/accounts/${account.id}/transfers`, data: found.items.map(transferView), has_more: found.hasMore };
  });

  app.post('/v1/transfers', bodyOptions, async (request, reply) => transfers.create(await authorize(request), request, reply));
  app.get<{ Params: { id: string } }>('/v1/transfers/:id', async (request) => {
    const merchant = await authorize(request);
    const transfer = transferIdPattern.test(request.params.id) ? await ledger.getTransfer(merchant.id, request.params.id) : null;
    if (!transfer) throw new TallyError('transfer_not_found', `no transfer ${request.params.id}`);
    return transferView(transfer);
  });
}

async function accountOf(ledger: LedgerStore, merchantId: string, accountId: string): Promise<Account> {
  const account = accountIdPattern.test(accountId) ? await ledger.getAccount(merchantId, accountId) : null;
  if (!account) throw new TallyError('account_not_found', `no account ${accountId}`);
  return account;
}

/** The hash covers the path without its query: `?wait_ms=` says how long to wait, not what to do. */
function idempotentRequest(merchant: Merchant, key: string, request: FastifyRequest, path: string): IdempotentRequest {
  return { merchantId: merchant.id, key, requestHash: requestHash(request.method, path, request.body) };
}

/** Marks a replay, as Stripe does, so a client can tell it did not act twice. */
function replayed(reply: FastifyReply): FastifyReply {
  return reply.header('idempotent-replayed', 'true');
}

class AccountRoutes {
  readonly #ledger: LedgerStore;
  readonly #idempotency: IdempotencyKeys;
  readonly #now: () => number;
  readonly #newId: () => string;

  constructor(ledger: LedgerStore, idempotency: IdempotencyKeys, now: () => number, newId: () => string) {
    this.#ledger = ledger;
    this.#idempotency = idempotency;
    this.#now = now;
    this.#newId = newId;
  }

  async create(merchant: Merchant, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const key = idempotencyKeyOf(request.headers, false);
    const input = parseAccountBody(request.body);
    const account: Account = { id: `acct_${this.#newId()}`, merchantId: merchant.id, ...input, balance: 0n, createdMs: this.#now() };
    if (key !== null) {
      void reply.header('idempotency-key', key);
      const idempotent = idempotentRequest(merchant, key, request, '/v1/accounts');
      const known = await this.#idempotency.find(idempotent);
      if (known) return this.#replay(merchant, known, reply);
      const claim = await this.#idempotency.claim(idempotent, 201, accountView(account));
      if (!claim.ours) return this.#replay(merchant, claim.record, reply);
    }
    await this.#ledger.createAccount(account);
    return reply.code(201).send(accountView(account));
  }

  async #replay(merchant: Merchant, record: IdempotencyRecord, reply: FastifyReply): Promise<FastifyReply> {
    const claimed = accountFromView(merchant.id, JSON.parse(record.body) as AccountView);
    const account = await completeClaim(record, this.#now, () => this.#ledger.getAccount(merchant.id, claimed.id), async () => {
      // The claimer may have created it after all, a moment ago: then it exists, as claimed.
      await this.#ledger.createAccount(claimed).catch((error: unknown) => {
        if (!(error instanceof TallyError && error.code === 'account_exists')) throw error;
      });
    });
    return replayed(reply).code(record.status).send(accountView(account ?? claimed));
  }
}

class TransferRoutes {
  readonly #ledger: LedgerStore;
  readonly #desk: TransferDesk;
  readonly #idempotency: IdempotencyKeys;
  readonly #now: () => number;
  readonly #newId: () => string;

  constructor(ledger: LedgerStore, desk: TransferDesk, idempotency: IdempotencyKeys, now: () => number, newId: () => string) {
    this.#ledger = ledger;
    this.#desk = desk;
    this.#idempotency = idempotency;
    this.#now = now;
    this.#newId = newId;
  }

  /**
   * Validation refusals (400) use up nothing. Then the key is looked up; a new request is
   * pre-checked, and its answer — a refusal (402, 404, 422) or the pending transfer (202) — claims
   * the key before anything is appended; only the claimer appends.
   */
  async create(merchant: Merchant, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const key = idempotencyKeyOf(request.headers, true)!;
    const waitMs = parseWaitQuery(request.query);
    const input = parseTransferBody(request.body);
    void reply.header('idempotency-key', key);
    const idempotent = idempotentRequest(merchant, key, request, '/v1/transfers');
    const known = await this.#idempotency.find(idempotent);
    if (known) return this.#replay(merchant, known, waitMs, reply);
    const refusal = await this.#desk.precheck(merchant.id, input);
    if (refusal) {
      const claim = await this.#idempotency.claim(idempotent, refusal.status, errorBody(refusal.code, refusal.message, { ...refusal.details }));
      if (!claim.ours) return this.#replay(merchant, claim.record, waitMs, reply);
      throw refusal;
    }
    const command: TransferCommand = { id: `tr_${this.#newId()}`, merchantId: merchant.id, ...input, requestedMs: this.#now() };
    const claim = await this.#idempotency.claim(idempotent, 202, transferView(pendingTransfer(command)));
    if (!claim.ours) return this.#replay(merchant, claim.record, waitMs, reply);
    await this.#desk.submit(command);
    const transfer = waitMs > 0 ? await this.#desk.waitDecided(merchant.id, command.id, waitMs) : null;
    return sendTransfer(reply, transfer ?? pendingTransfer(command));
  }

  async #replay(merchant: Merchant, record: IdempotencyRecord, waitMs: number, reply: FastifyReply): Promise<FastifyReply> {
    if (record.status !== 202) return replayed(reply).code(record.status).type('application/json; charset=utf-8').send(record.body);
    const command = commandFromView(merchant.id, JSON.parse(record.body) as TransferView);
    const found = await completeClaim(record, this.#now, () => this.#ledger.getTransfer(merchant.id, command.id), () => this.#desk.submit(command));
    const transfer = found && waitMs > 0 ? await this.#desk.waitDecided(merchant.id, command.id, waitMs) : found;
    return sendTransfer(replayed(reply), transfer ?? pendingTransfer(command));
  }
}

/** 200 once the ledger decided (succeeded or failed), 202 while it is pending. */
function sendTransfer(reply: FastifyReply, transfer: Transfer): FastifyReply {
  return reply.code(transfer.status === 'pending' ? 202 : 200).send(transferView(transfer));
}
