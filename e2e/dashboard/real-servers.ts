/**
 * The real servers of the dashboard run (e2e/dashboard/in-vm.sh): one HTTP server on 0.0.0.0:8080 inside
 * a network namespace that holds every real server's address, so each address is its own real server.
 *   GET /healthz              200, or 503 while the file <down-dir>/<local address> exists
 *   GET /data?bytes=N&ms=M    waits M ms, then answers N bytes
 * Prints "listening" once it accepts connections.
 * Usage: node e2e/dashboard/real-servers.ts <down-dir>
 */
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";

const downDir = process.argv[2];
if (!downDir) throw new Error("usage: real-servers.ts <down-dir>");

const server = createServer((request, response) => {
  const url = new URL(request.url ?? "/", "http://real-server");
  const local = request.socket.localAddress ?? "";
  if (url.pathname === "/healthz") {
    const down = existsSync(join(downDir, local));
    response.writeHead(down ? 503 : 200, { "content-type": "text/plain" });
    response.end(down ? "down\n" : "ok\n");
    return;
  }
  const bytes = Math.min(Number(url.searchParams.get("bytes") ?? 100) || 0, 10_000_000);
  const ms = Math.min(Number(url.searchParams.get("ms") ?? 0) || 0, 600_000);
  setTimeout(() => {
    response.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes });
    response.end(Buffer.alloc(bytes, 120));
  }, ms);
});
server.keepAliveTimeout = 1_000;
server.listen(8080, "0.0.0.0", () => console.log("listening"));
