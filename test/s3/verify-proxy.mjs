// A verifying front for the S3 tests: every request's SigV4 signature is
// recomputed with AWS's own signer (@smithy/signature-v4, the one the AWS SDK
// uses) from the request's own SignedHeaders, and its x-amz-content-sha256
// is checked against the body, before it is forwarded to s3rver, which
// checks no V4 signature at all.  A request that real S3 would refuse is
// answered as S3 would (403/400 with an XML error) and counted as rejected.
// So are a Content-MD5 or x-amz-checksum-crc32c that is not the body's, and
// a multipart completion whose parts' ChecksumCRC32C are not those the parts
// were sent with.
//
// Temporary credentials: with --issued FILE (credential-fakes.mjs's state),
// the credentials listed there are accepted too, as S3 accepts a role's:
// only with their session token (x-amz-security-token, signed), and only
// while they are valid at the request's signing time; a request signed with
// expired ones is answered ExpiredToken and counted as rejected.
//
// Rules that refuse as a bucket policy or S3 would (counted apart, in
// refusedByPolicy and expiredTokenAnswered, not as rejections):
//   --require "OP[,OP...]:header=value"  (repeatable) refuses with
//       AccessDenied a request of those operations without that header value;
//   --bucket-owner ID  refuses a request whose x-amz-expected-bucket-owner
//       names another account;
//   --expired-token-once OP  answers the first request of OP ExpiredToken.
// --delay-ms N holds every verified request N ms before forwarding it.
// stats.headers counts, per operation, the requests that carried each of the
// headers bucket policies look at.
//
// usage: node verify-proxy.mjs --listen PORT --backend PORT --stats FILE
//                              [--access-key ID --secret-key KEY --region R]
//                              [--issued FILE] [--require RULE]... [--bucket-owner ID]
//                              [--expired-token-once OP] [--delay-ms N]
//                              [--lifetime SECONDS]
// Listens on 127.0.0.1 only and exits by itself after --lifetime seconds
// (default 1800).  The stats file (JSON) is rewritten after every request and
// read back at start, so a restarted proxy goes on counting.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import http from "node:http";
import { parseArgs } from "node:util";

import { AwsCrc32c } from "@aws-crypto/crc32c";
import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";

const { values: options } = parseArgs({
  options: {
    listen: { type: "string" },
    backend: { type: "string" },
    stats: { type: "string" },
    "access-key": { type: "string", default: "S3RVER" },
    "secret-key": { type: "string", default: "S3RVER" },
    region: { type: "string", default: "us-east-1" },
    issued: { type: "string" },
    require: { type: "string", multiple: true, default: [] },
    "bucket-owner": { type: "string" },
    "expired-token-once": { type: "string" },
    "delay-ms": { type: "string", default: "0" },
    lifetime: { type: "string", default: "1800" },
  },
});
for (const required of ["listen", "backend", "stats"]) {
  if (!options[required]) {
    console.error(`verify-proxy: --${required} is required`);
    process.exit(2);
  }
}

const MAX_BODY_BYTES = 64 * 1024 * 1024;
const MAX_SKEW_MS = 15 * 60 * 1000;
const stats = existsSync(options.stats)
  ? JSON.parse(readFileSync(options.stats, "utf8"))
  : { verified: 0, rejected: 0, verifiedByOperation: {}, rejections: [] };
for (const [name, initial] of [["refusedByPolicy", 0], ["expiredTokenAnswered", 0], ["headers", {}],
                               ["signedWithIssued", 0], ["partChecksums", {}], ["accessKeys", {}]])
  if (stats[name] === undefined) stats[name] = initial;
// The headers whose presence stats.headers counts per operation.
const WATCHED_HEADERS = ["x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
  "x-amz-storage-class", "x-amz-checksum-crc32c", "x-amz-checksum-algorithm", "content-md5",
  "x-amz-expected-bucket-owner", "x-amz-security-token"];
// --require rules: { operations: Set, header, value }.
const requirements = options.require.map((rule) => {
  const match = /^([^:]+):([^=]+)=(.*)$/.exec(rule);
  if (!match) {
    console.error(`verify-proxy: bad --require rule ${rule}`);
    process.exit(2);
  }
  return { operations: new Set(match[1].split(",")), header: match[2].toLowerCase(), value: match[3] };
});
let expiredTokenPending = options["expired-token-once"];

function saveStats() {
  writeFileSync(`${options.stats}.tmp`, JSON.stringify(stats, null, 1));
  renameSync(`${options.stats}.tmp`, options.stats);
}

// What an S3 request does, for the counts: "PUT object", "PUT part", ...
function operation(method, query) {
  if (method === "PUT" && query.has("partNumber")) return "PUT part";
  if (method === "POST" && query.has("uploads")) return "POST multipart start";
  if (method === "POST" && query.has("uploadId")) return "POST multipart completion";
  if (method === "DELETE" && query.has("uploadId")) return "DELETE multipart abort";
  if (method === "PUT") return "PUT object";
  if (method === "DELETE") return "DELETE object";
  return `${method} ${query.size ? "listing" : "object"}`;
}

// escapeUri is SigV4's URI encoding: everything but the unreserved bytes.
function escapeUri(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

class Rejection extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// parseAuthorization splits "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
function parseAuthorization(header) {
  if (!header) throw new Rejection(403, "AccessDenied", "The request carries no Authorization header.");
  const match = /^AWS4-HMAC-SHA256 (.*)$/.exec(header);
  if (!match) throw new Rejection(400, "InvalidArgument", "Unsupported Authorization type.");
  const fields = {};
  for (const part of match[1].split(",")) {
    const [name, ...rest] = part.trim().split("=");
    fields[name] = rest.join("=");
  }
  if (!fields.Credential || !fields.SignedHeaders || !fields.Signature)
    throw new Rejection(400, "AuthorizationHeaderMalformed", "The Authorization header is incomplete.");
  const [accessKeyId, date, region, service, terminator, ...extra] = fields.Credential.split("/");
  if (extra.length || terminator !== "aws4_request")
    throw new Rejection(400, "AuthorizationHeaderMalformed", `Malformed credential scope ${fields.Credential}.`);
  return { accessKeyId, date, region, service, signedHeaders: fields.SignedHeaders.split(";"), signature: fields.Signature };
}

// parseAmzDate reads 20260330T010203Z.
function parseAmzDate(text) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text || "");
  if (!m) throw new Rejection(403, "AccessDenied", "X-Amz-Date is missing or malformed.");
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

// signingCredentials returns the credentials of an access key: the static
// ones, or temporary ones of --issued with their session token and expiry.
function signingCredentials(accessKeyId) {
  if (accessKeyId === options["access-key"])
    return { accessKeyId, secretAccessKey: options["secret-key"] };
  const issued = options.issued && existsSync(options.issued)
    ? JSON.parse(readFileSync(options.issued, "utf8")).issued : [];
  const found = issued.find((c) => c.accessKeyId === accessKeyId);
  if (!found) throw new Rejection(403, "InvalidAccessKeyId", `Unknown access key ${accessKeyId}.`);
  return found;
}

// verify throws a Rejection unless the request is signed as AWS would
// accept it; it returns the credentials' access key.
async function verify(req, body) {
  const auth = parseAuthorization(req.headers.authorization);
  const credentials = signingCredentials(auth.accessKeyId);
  if (auth.region !== options.region || auth.service !== "s3")
    throw new Rejection(400, "AuthorizationHeaderMalformed", `Wrong scope ${auth.region}/${auth.service}.`);

  // Every signed header must be in the request; host, x-amz-date and
  // x-amz-content-sha256 must be signed, and so must every x-amz-* header.
  const signed = new Set(auth.signedHeaders);
  const headers = {};
  for (const name of auth.signedHeaders) {
    if (name !== name.toLowerCase() || req.headers[name] === undefined)
      throw new Rejection(403, "SignatureDoesNotMatch", `Header "${name}" is signed but not in the request.`);
    headers[name] = req.headers[name];
  }
  for (const name of ["host", "x-amz-date", "x-amz-content-sha256"])
    if (!signed.has(name)) throw new Rejection(403, "AccessDenied", `Header "${name}" must be signed.`);
  for (const name of Object.keys(req.headers))
    if (name.startsWith("x-amz-") && !signed.has(name))
      throw new Rejection(403, "AccessDenied", `Header "${name}" is sent but not signed.`);

  const signingDate = parseAmzDate(req.headers["x-amz-date"]);
  if (credentials.sessionToken !== undefined) {
    if (req.headers["x-amz-security-token"] !== credentials.sessionToken)
      throw new Rejection(400, "InvalidToken", "The provided token is malformed or otherwise invalid.");
    if (signingDate.getTime() >= credentials.expiration)
      throw new Rejection(400, "ExpiredToken", "The provided token has expired.");
  } else if (req.headers["x-amz-security-token"] !== undefined)
    throw new Rejection(400, "InvalidToken", "The provided token is malformed or otherwise invalid.");
  if (Math.abs(Date.now() - signingDate.getTime()) > MAX_SKEW_MS)
    throw new Rejection(403, "RequestTimeTooSkewed", "The request time is too far from the server's.");
  if (auth.date !== req.headers["x-amz-date"].slice(0, 8))
    throw new Rejection(400, "AuthorizationHeaderMalformed", "The credential date is not the request's date.");

  const declared = req.headers["x-amz-content-sha256"];
  if (declared !== "UNSIGNED-PAYLOAD") {
    const actual = createHash("sha256").update(body).digest("hex");
    if (declared !== actual)
      throw new Rejection(400, "XAmzContentSHA256Mismatch",
        `x-amz-content-sha256 ${declared} is not the body's SHA-256 ${actual}.`);
  }
  if (req.headers["content-md5"] !== undefined &&
      req.headers["content-md5"] !== createHash("md5").update(body).digest("base64"))
    throw new Rejection(400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
  if (req.headers["x-amz-checksum-crc32c"] !== undefined &&
      req.headers["x-amz-checksum-crc32c"] !== await crc32c(body))
    throw new Rejection(400, "BadDigest", "The CRC32C you specified did not match the calculated checksum.");

  // The canonical path is the path's segments decoded and encoded once
  // (S3 does not double-encode); the query is decoded for the signer.
  const [rawPath, rawQuery = ""] = req.url.split(/\?(.*)/s, 2);
  let path;
  const query = {};
  try {
    path = rawPath.split("/").map((segment) => escapeUri(decodeURIComponent(segment))).join("/");
    for (const pair of rawQuery.split("&").filter((p) => p !== "")) {
      const [key, ...rest] = pair.split("=");
      const name = decodeURIComponent(key);
      const value = decodeURIComponent(rest.join("="));
      query[name] = name in query ? [].concat(query[name], value) : value;
    }
  } catch {
    throw new Rejection(400, "InvalidURI", "The URI could not be decoded.");
  }

  const signer = new SignatureV4({
    credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
    region: options.region,
    service: "s3",
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const signedRequest = await signer.sign(
    { method: req.method, protocol: "http:", hostname: "127.0.0.1", path, query, headers, body },
    { signingDate, signableHeaders: signed },
  );
  const expected = parseAuthorization(signedRequest.headers.authorization);
  if (expected.signedHeaders.join(";") !== auth.signedHeaders.join(";"))
    throw new Rejection(403, "SignatureDoesNotMatch",
      `SignedHeaders ${auth.signedHeaders.join(";")} are not in canonical form (${expected.signedHeaders.join(";")}).`);
  if (expected.signature !== auth.signature)
    throw new Rejection(403, "SignatureDoesNotMatch",
      "The request signature we calculated does not match the signature you provided.");
  return credentials;
}

// crc32c returns the base64 CRC32C of a body, as S3's checksum header has it.
async function crc32c(body) {
  const checksum = new AwsCrc32c();
  checksum.update(body);
  return Buffer.from(await checksum.digest()).toString("base64");
}

// checkPartChecksums refuses a completion whose parts name a ChecksumCRC32C
// other than the one their part was sent with.
function checkPartChecksums(query, body) {
  const sent = stats.partChecksums[query.get("uploadId")] || {};
  for (const part of body.toString("utf8").matchAll(/<Part>(.*?)<\/Part>/gs)) {
    const number = /<PartNumber>(\d+)<\/PartNumber>/.exec(part[1])?.[1];
    const named = /<ChecksumCRC32C>([^<]*)<\/ChecksumCRC32C>/.exec(part[1])?.[1];
    if (named !== undefined && named !== sent[number])
      throw new Rejection(400, "InvalidPart", `Part ${number}'s ChecksumCRC32C ${named} is not the part's ${sent[number]}.`);
  }
}

// policyRefusal returns the rejection a bucket policy's rule would answer, if any.
function policyRefusal(req, kind) {
  for (const rule of requirements)
    if (rule.operations.has(kind) && req.headers[rule.header] !== rule.value)
      return new Rejection(403, "AccessDenied", `Access Denied (the bucket policy requires ${rule.header}: ${rule.value}).`);
  const owner = req.headers["x-amz-expected-bucket-owner"];
  if (owner !== undefined && options["bucket-owner"] !== undefined && owner !== options["bucket-owner"])
    return new Rejection(403, "AccessDenied", "Access Denied (the bucket belongs to another account).");
  return null;
}

function xmlEscape(text) {
  return String(text).replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

// reject answers as S3 would; counter names what is counted (rejected:
// a request real S3 would refuse; the rules' refusals are counted apart).
function reject(res, req, rejection, counter = "rejected") {
  stats[counter] += 1;
  stats.rejections.push(`${req.method} ${req.url}: ${rejection.code}: ${rejection.message}`);
  stats.rejections = stats.rejections.slice(-50);
  saveStats();
  console.log(`verify-proxy: ${counter} ${req.method} ${req.url}: ${rejection.code}: ${rejection.message}`);
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${rejection.code}</Code>` +
    `<Message>${xmlEscape(rejection.message)}</Message><Resource>${xmlEscape(req.url)}</Resource>` +
    `<RequestId>verify-proxy</RequestId></Error>`;
  res.writeHead(rejection.status, { "Content-Type": "application/xml", "Content-Length": Buffer.byteLength(xml), Connection: "close" });
  res.end(xml);
}

// forward sends a verified request on to s3rver, which knows only the
// static key: a temporary key's requests go on under it (s3rver checks no V4
// signature, only that the key exists).
function forward(req, res, body) {
  const headers = { ...req.headers };
  for (const hop of ["expect", "connection", "keep-alive", "transfer-encoding"]) delete headers[hop];
  headers.authorization = headers.authorization.replace(/Credential=[^/]*/, `Credential=${options["access-key"]}`);
  headers["content-length"] = String(body.length);
  const upstream = http.request(
    { host: "127.0.0.1", port: Number(options.backend), method: req.method, path: req.url, headers, timeout: 60000 },
    (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on("timeout", () => upstream.destroy(new Error("backend timed out")));
  upstream.on("error", (error) => {
    if (res.headersSent) return res.destroy();
    const xml = `<Error><Code>ServiceUnavailable</Code><Message>${xmlEscape(error.message)}</Message></Error>`;
    res.writeHead(503, { "Content-Type": "application/xml", "Content-Length": Buffer.byteLength(xml) });
    res.end(xml);
  });
  upstream.end(body);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return req.destroy();
    chunks.push(chunk);
  });
  req.on("end", async () => {
    const body = Buffer.concat(chunks);
    const query = new URLSearchParams(req.url.split(/\?(.*)/s, 2)[1] || "");
    const kind = operation(req.method, query);
    let credentials;
    try {
      credentials = await verify(req, body);
      if (kind === "POST multipart completion") checkPartChecksums(query, body);
    } catch (error) {
      if (error instanceof Rejection) return reject(res, req, error);
      return reject(res, req, new Rejection(500, "InternalError", `verify-proxy: ${error.stack}`));
    }
    stats.verified += 1;
    stats.verifiedByOperation[kind] = (stats.verifiedByOperation[kind] || 0) + 1;
    if (credentials.sessionToken !== undefined) stats.signedWithIssued += 1;
    stats.accessKeys[credentials.accessKeyId] = (stats.accessKeys[credentials.accessKeyId] || 0) + 1;
    stats.headers[kind] = stats.headers[kind] || {};
    for (const name of WATCHED_HEADERS)
      if (req.headers[name] !== undefined) stats.headers[kind][name] = (stats.headers[kind][name] || 0) + 1;
    if (kind === "POST multipart completion" && /<ChecksumCRC32C>/.test(body.toString("utf8")))
      stats.headers[kind]["ChecksumCRC32C in the body"] = (stats.headers[kind]["ChecksumCRC32C in the body"] || 0) + 1;
    if (kind === "PUT part" && req.headers["x-amz-checksum-crc32c"] !== undefined) {
      const sent = (stats.partChecksums[query.get("uploadId")] ||= {});
      sent[query.get("partNumber")] = req.headers["x-amz-checksum-crc32c"];
    }
    saveStats();
    const refusal = policyRefusal(req, kind);
    if (refusal) return reject(res, req, refusal, "refusedByPolicy");
    if (expiredTokenPending === kind && credentials.sessionToken !== undefined) {
      expiredTokenPending = undefined;
      return reject(res, req, new Rejection(400, "ExpiredToken", "The provided token has expired."),
        "expiredTokenAnswered");
    }
    setTimeout(() => forward(req, res, body), Number(options["delay-ms"]));
  });
});
server.requestTimeout = 120000;
server.listen(Number(options.listen), "127.0.0.1", () => {
  saveStats();
  console.log(`verify-proxy: listening on 127.0.0.1:${options.listen}, forwarding to 127.0.0.1:${options.backend}`);
});
setTimeout(() => process.exit(0), Number(options.lifetime) * 1000).unref();
process.on("SIGTERM", () => process.exit(0));
