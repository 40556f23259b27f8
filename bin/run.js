#!/usr/bin/env -S node --max-semi-space-size=64
// A busy daemon allocates fast: Node's default 16 MiB semi-spaces make it scavenge so often that the scaletest runs
// ~12% slower (bench in README). Run as `coder-lite` or `./bin/run.js` to get this; `node bin/run.js` does not.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
