// A misbehaving S3 endpoint for the deadline tests, on 127.0.0.1 only.
//
// usage: node misbehaving-server.mjs --port PORT --mode MODE --log FILE [--keys FILE] [--lifetime SECONDS]
//   stall    reads each request and never answers (the connection stays open)
//   endless  answers 200 at once and streams a body that never ends, fast
//            enough (about 20 kB/s) that no low-speed limit stops it
//   list     answers a ListObjectsV2 request with one page of the keys in
//            --keys (one a line, whatever they are, whatever the prefix asked)
//            but those it was asked to delete, a GET of an object with one
//            NDJSON line holding the row its name says (its created_at and
//            id), and any other request (an upload, a delete) with success
//   list-endless  answers every ListObjectsV2 request with a truncated page
//            whose continuation token is always the same
// Each event is a line in the log: "request <method> <url>", "closed <open connections left>".
// It exits by itself after --lifetime seconds (default 600).
import { appendFileSync, readFileSync } from "node:fs";
import net from "node:net";
import { parseArgs } from "node:util";

const { values: options } = parseArgs({
  options: {
    port: { type: "string" },
    mode: { type: "string" },
    log: { type: "string" },
    lifetime: { type: "string", default: "600" },
    keys: { type: "string" },
  },
});
if (!options.port || !["stall", "endless", "list", "list-endless"].includes(options.mode) || !options.log) {
  console.error("usage: misbehaving-server.mjs --port PORT --mode stall|endless|list|list-endless --log FILE [--keys FILE]");
  process.exit(2);
}

const log = (line) => appendFileSync(options.log, `${line}\n`);
let open = 0;
const deleted = new Set();

const xmlText = (text) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
// listPage: a ListObjectsV2 answer holding keys, truncated with token when given.
const listPage = (keys, token) =>
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>lake</Name>' +
  keys.map((key) => `<Contents><Key>${xmlText(key)}</Key><LastModified>2026-03-30T12:00:00.000Z</LastModified>` +
    '<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>1024</Size><StorageClass>STANDARD</StorageClass></Contents>').join("") +
  `<KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys>` +
  (token ? `<IsTruncated>true</IsTruncated><NextContinuationToken>${token}</NextContinuationToken>` : "<IsTruncated>false</IsTruncated>") +
  "</ListBucketResult>";
// answerListing answers a request of the list modes once its body is in.
const answerListing = (socket, requestLine) => {
  let status = "200 OK";
  let body = "";
  if (requestLine.startsWith("GET ") && requestLine.includes("list-type=2")) {
    body = options.mode === "list-endless"
      ? listPage(["lake-never-ends"], "always-the-same")
      : listPage(readFileSync(options.keys, "utf8").split("\n").filter((key) => key !== "" && !deleted.has(key)), null);
  } else if (requestLine.startsWith("GET ")) {
    const row = /batch-(\d{4}-\d\d-\d\d)T(\d\d)-(\d\d)-(\d\d)-(\d{6})Z-(\d+)\.json[ ?]/.exec(requestLine);
    body = row ? `{"id": ${row[6]}, "created_at": "${row[1]}T${row[2]}:${row[3]}:${row[4]}.${row[5]}Z"}\n` : "";
  } else if (requestLine.startsWith("DELETE ")) {
    deleted.add(decodeURIComponent(requestLine.split(" ")[1].split("?")[0]).replace(/^\/[^/]*\//, ""));
    status = "204 No Content";
  }
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `ETag: "d41d8cd98f00b204e9800998ecf8427e"\r\nConnection: close\r\n\r\n${body}`);
};

const server = net.createServer((socket) => {
  open += 1;
  let head = "";
  let answered = false;
  let timer = null;
  socket.on("data", (chunk) => {
    if (answered) return;
    head += chunk.toString("latin1");
    if (!head.includes("\r\n\r\n")) return;
    const requestLine = head.split("\r\n", 1)[0];
    if (options.mode.startsWith("list")) {
      const length = Number((/\r\ncontent-length: *(\d+)/i.exec(head) || [0, 0])[1]);
      if (head.length - head.indexOf("\r\n\r\n") - 4 < length) return;
      answered = true;
      log(`request ${requestLine}`);
      answerListing(socket, requestLine);
      return;
    }
    answered = true;
    log(`request ${requestLine}`);
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
