// `tally merchants create|list`: the admin API's merchant calls, run directly on the stores.
import { parseArgs } from 'node:util';
import type { Config } from '../config/config.ts';
import { createMerchant, merchantView } from '../admin/merchants.ts';
import { openDeployment } from './compose.ts';

export async function merchantsCommand(config: Config, args: readonly string[]): Promise<number> {
  const [action, ...rest] = args;
  const deployment = await openDeployment({ ...config, logLevel: 'warn' });
  try {
    const { services } = deployment;
    if (action === 'list') {
      process.stdout.write(`${JSON.stringify((await services.merchants.list()).map(merchantView), null, 2)}\n`);
      return 0;
    }
    if (action === 'create') {
      const { values } = parseArgs({
        args: [...rest],
        options: { name: { type: 'string' }, currency: { type: 'string' }, 'allowed-origin': { type: 'string', multiple: true } },
      });
      if (!values.name) {
        process.stderr.write('tally merchants create: --name is required\n');
        return 2;
      }
      const created = await createMerchant(services.merchants, {
        name: values.name, currency: values.currency, allowedOrigins: values['allowed-origin'],
      }, services.now());
      process.stdout.write(`${JSON.stringify({ ...merchantView(created.merchant), write_key: created.writeKey, secret_key: created.secretKey }, null, 2)}\n`);
      return 0;
    }
    process.stderr.write('usage: tally merchants create --name <name> [--currency USD] | tally merchants list\n');
    return 2;
  } finally {
    await deployment.close();
  }
}
