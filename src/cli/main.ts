#!/usr/bin/env node
// `tally <command>`: the command line, and the composition root of every role. Parses argv,
// loads the configuration once, opens the adapters and runs the command.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, settings } from '../config/config.ts';
import { TallyError } from '../core/errors.ts';
import { runRoles } from './serve.ts';
import { merchantsCommand } from './merchants.ts';
import { reprocessCommand } from './reprocess.ts';
import { migrateCommand } from './migrate.ts';
import { pingCommand } from './ping.ts';
import type { Role } from '../app/services.ts';

const help = `Tally — events in, metrics out.

Usage: tally <command> [options]

Commands:
  start                 every role in one process (collector, processor, query); embedded unless engines are set
  migrate               create or upgrade topics, keyspace and schema (distributed; run before the roles)
  collector             the ingest API only (POST /v1/events)
  processor             the processors only: analytics, ledger, ping responder (no public API; /healthz and /metrics)
  query                 the secret-key APIs only (POST /v1/query, payments: /v1/accounts, /v1/transfers)
  merchants create --name <name> [--currency USD] [--allowed-origin <origin> …]
  merchants list
  reprocess --from <time> --to <time> [--merchant <id>]
                        rebuild rollups from raw events with the current processing logic
  ping                  send tally.ping.requested over the log and wait for the pong (is a processor answering?)
  help                  this text

Configuration (environment variables, or a JSON file named by TALLY_CONFIG):
${settings.map((s) => `  ${s.env.padEnd(28)} ${s.description}`).join('\n')}
`;

/** After a command has finished, how long the process may linger before it exits anyway. */
const exitGraceMs = 1000;

const roleCommands: Readonly<Record<string, readonly Role[]>> = {
  start: ['collector', 'processor', 'query'],
  collector: ['collector'],
  processor: ['processor'],
  query: ['query'],
};

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(help);
    return command === undefined ? 2 : 0;
  }
  const config = loadConfig();
  const roles = roleCommands[command];
  if (roles) return runRoles(config, roles, { firstStartDemo: command === 'start' });
  if (command === 'merchants') return merchantsCommand(config, rest);
  if (command === 'migrate') return migrateCommand(config);
  if (command === 'ping') return pingCommand(config);
  if (command === 'reprocess') {
    const { values } = parseArgs({ args: [...rest], options: { from: { type: 'string' }, to: { type: 'string' }, merchant: { type: 'string' } } });
    return reprocessCommand(config, values);
  }
  process.stderr.write(`tally: unknown command "${command}"\n\n${help}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is drained and closed by now; a stray timer in a client library must not keep a
    // stopped process alive (an orchestrator would wait, then SIGKILL it). Normally the loop is
    // already empty and the process exits before this fires.
    setTimeout(() => process.exit(code), exitGraceMs).unref();
  },
  (error: unknown) => {
    if (error instanceof ConfigError) process.stderr.write(`tally: configuration: ${error.message}\n`);
    else if (error instanceof TallyError) process.stderr.write(`tally: ${error.code}: ${error.message}\n`);
    else if (error instanceof Error && error.name === 'TypeError' && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`tally: ${error.message}\n`);
    } else process.stderr.write(`tally: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
