import { BaseCommand, databaseFlags } from '../../cli/base.js';
import { defaultDataDir, runningEmbeddedUrl } from '../../daemon/postgres/embedded.js';

export default class PostgresBuiltinUrl extends BaseCommand {
  static override description = 'Print the URL of the embedded PostgreSQL that a running `coder-lite server` uses (it holds the password).';

  static override examples = ['<%= config.bin %> server postgres-builtin-url', 'psql "$(<%= config.bin %> server postgres-builtin-url)"'];

  static override flags = { 'data-dir': databaseFlags['data-dir'] };

  static override enableJsonFlag = true;

  async run(): Promise<{ url: string }> {
    const { flags } = await this.parse(PostgresBuiltinUrl);
    const dataDir = flags['data-dir'] ?? defaultDataDir();
    const url = await runningEmbeddedUrl(dataDir);
    if (!url) this.error(`no running coder-lite server with an embedded PostgreSQL in ${dataDir}; start one with \`coder-lite server --data-dir ${dataDir}\``, { exit: 1 });
    if (!this.jsonEnabled()) process.stdout.write(`${url}\n`);
    return { url };
  }
}
