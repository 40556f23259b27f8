import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

import { Args } from '@oclif/core';

import { BaseCommand } from '../../cli/base.js';
import { compareSummaries, formatComparison, summaryFromText, type SummaryDifference } from '../../scaletest/compare.js';

export default class ScaletestCompare extends BaseCommand {
  static override summary = "Print the differences between two scaletest runs' summaries.";

  static override description =
    'Each file is the stdout of `scaletest run` (it ends with SCALETEST_SUMMARY=…) or its --json report. Prints every figure that changed, B − A and the relative change.';

  static override examples = ['<%= config.bin %> scaletest run --json > a.json && <%= config.bin %> scaletest run --json > b.json && <%= config.bin %> scaletest compare a.json b.json'];

  static override args = {
    a: Args.string({ description: 'The first run (the baseline).', required: true }),
    b: Args.string({ description: 'The second run.', required: true }),
  };

  static override enableJsonFlag = true;

  async run(): Promise<{ differences: SummaryDifference[] }> {
    const { args } = await this.parse(ScaletestCompare);
    const load = async (path: string) => {
      try {
        return summaryFromText(await readFile(path, 'utf8'));
      } catch (err) {
        throw new Error(`cannot read a scaletest summary from ${path}`, { cause: err });
      }
    };
    const differences = compareSummaries(await load(args.a), await load(args.b));
    if (!this.jsonEnabled()) process.stdout.write(formatComparison(differences, [basename(args.a), basename(args.b)]));
    return { differences };
  }
}
