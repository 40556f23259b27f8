import { createServer } from 'node:net';

/**
 * A loopback port that is free now and outside the kernel's ephemeral range, for a process that must be told its
 * port before it starts. A port from `listen(0)` would be ephemeral, and any outgoing connection could take it
 * before the process binds it.
 */
export async function freeFixedPort(): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 20_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
}
