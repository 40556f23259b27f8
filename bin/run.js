#!/usr/bin/env -S node --max-semi-space-size=64
// A busy daemon allocates fast: with Node's default 16 MiB semi-spaces it scavenges so often that the full scaletest
// runs ~7% slower (README). Run as `coder-lite` or `./bin/run.js` to get this; `node bin/run.js` does not.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
