/**
 * Free loopback TCP ports for the cluster's components.
 *
 * @module
 */

/**
 * Ask the kernel for `count` distinct free ports on 127.0.0.1.
 *
 * The ports are released before they are returned, so another process could take one in
 * between; the window is short and components fail loudly when a port is taken.
 *
 * @param count How many ports.
 * @returns Distinct port numbers.
 */
export function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((listener) => (listener.addr as Deno.NetAddr).port);
  for (const listener of listeners) listener.close();
  return ports;
}
