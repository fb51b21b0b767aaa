// A misbehaving S3 endpoint for the deadline tests, on 127.0.0.1 only.
//
// usage: node misbehaving-server.mjs --port PORT --mode stall|endless --log FILE [--lifetime SECONDS]
//   stall    reads each request and never answers (the connection stays open)
//   endless  answers 200 at once and streams a body that never ends, fast
//            enough (about 20 kB/s) that no low-speed limit stops it
// Each event is a line in the log: "request <method> <url>", "closed <open connections left>".
// It exits by itself after --lifetime seconds (default 600).
import { appendFileSync } from "node:fs";
import net from "node:net";
import { parseArgs } from "node:util";

const { values: options } = parseArgs({
  options: {
    port: { type: "string" },
    mode: { type: "string" },
    log: { type: "string" },
    lifetime: { type: "string", default: "600" },
  },
});
if (!options.port || !["stall", "endless"].includes(options.mode) || !options.log) {
  console.error("usage: misbehaving-server.mjs --port PORT --mode stall|endless --log FILE");
  process.exit(2);
}

const log = (line) => appendFileSync(options.log, `${line}\n`);
let open = 0;

const server = net.createServer((socket) => {
  open += 1;
  let head = "";
  let answered = false;
  let timer = null;
  socket.on("data", (chunk) => {
    if (answered) return;
    head += chunk.toString("latin1");
    if (!head.includes("\r\n\r\n")) return;
    answered = true;
    log(`request ${head.split("\r\n", 1)[0]}`);
    if (options.mode === "endless") {
      socket.write("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n");
      const piece = `400\r\n${"<x>".repeat(341)}x\r\n`;
      timer = setInterval(() => socket.write(piece), 50);
    }
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    if (timer) clearInterval(timer);
    open -= 1;
    log(`closed ${open}`);
  });
});
server.listen(Number(options.port), "127.0.0.1", () => log(`listening ${options.mode}`));
setTimeout(() => process.exit(0), Number(options.lifetime) * 1000).unref();
process.on("SIGTERM", () => process.exit(0));
