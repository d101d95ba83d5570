// Helpers shared by the CLI commands.
import { Option } from 'commander';
import { GafferClient } from '../client/client.ts';

export const DEFAULT_URL = 'http://127.0.0.1:7070';

export function clientFrom(opts: { url?: string; token?: string }): GafferClient {
  const url = opts.url ?? process.env.GAFFER_URL ?? DEFAULT_URL;
  const token = opts.token ?? process.env.GAFFER_TOKEN;
  return new GafferClient(token ? { url, token } : { url });
}

export const urlOption = (): Option => new Option('--url <url>', `coordinator URL (env GAFFER_URL, default ${DEFAULT_URL})`);
export const tokenOption = (): Option => new Option('--token <token>', 'bearer token (env GAFFER_TOKEN)');
