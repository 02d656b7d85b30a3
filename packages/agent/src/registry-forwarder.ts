// Inside the sandbox: localhost:5000 is the lab registry. A plain TCP forwarder from
// 127.0.0.1:5000 to the UNIX socket the driver serves for this sandbox (BERTH_REGISTRY_SOCKET,
// bound in read-only); the driver's gateway on the other end decides what this sandbox may see
// and write. Docker treats 127.0.0.0/8 registries as insecure-by-default, so `docker push
// localhost:5000/app` and `curl localhost:5000/v2/_catalog` work over plain HTTP, as with a
// registry a learner would run themselves.
import net from "node:net";

export interface RegistryForwarderOptions {
  socketPath: string;
  host?: string;
  port?: number;
  log?: (line: string) => void;
  /** When the port is taken (a learner's own registry), try again this often (ms). */
  retryMs?: number;
}

export function startRegistryForwarder(opts: RegistryForwarderOptions): { close(): void; listening(): Promise<number> } {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? 5000;
  const log = opts.log ?? (() => {});
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let warned = false;
  const sockets = new Set<net.Socket>();
  let resolveListening!: (port: number) => void;
  const listening = new Promise<number>((r) => (resolveListening = r));

  const server = net.createServer((client) => {
    const upstream = net.connect(opts.socketPath);
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    // One side finished: end the other, never destroy it, or bytes still queued for it are lost
    // (a registry that closes after a layer's last byte would look like a truncated layer).
    client.on("close", () => {
      sockets.delete(client);
      upstream.end();
    });
    upstream.on("close", () => {
      sockets.delete(upstream);
      client.end();
    });
    // A real failure (reset, no gateway): both go at once.
    client.on("error", () => upstream.destroy());
    upstream.on("error", (err) => {
      log(`registry: ${opts.socketPath}: ${err.message}`);
      client.destroy();
    });
  });
  const tryListen = () => {
    if (closed) return;
    server.listen(port, host);
  };
  server.on("listening", () => {
    const p = (server.address() as net.AddressInfo).port;
    log(`registry: localhost:${p} forwards to the lab registry (${opts.socketPath})`);
    resolveListening(p);
  });
  server.on("error", (err: NodeJS.ErrnoException) => {
    // Port taken: the learner runs something there. Say so once, and take it when it is free.
    if (!warned) log(`registry: cannot listen on ${host}:${port} (${err.code ?? err.message}); retrying`);
    warned = true;
    retry = setTimeout(tryListen, opts.retryMs ?? 10_000);
    retry.unref();
  });
  tryListen();
  return {
    listening: () => listening,
    close() {
      closed = true;
      clearTimeout(retry);
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}
