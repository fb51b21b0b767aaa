// Fakes of the three sources of a role's temporary credentials, for the
// credential chain tests, on 127.0.0.1 only:
//   STS            POST Action=AssumeRoleWithWebIdentity (form body): checks
//                  the token and the role, answers STS's XML;
//   container      GET of the container credentials endpoint: checks the
//                  Authorization header when --container-token is given,
//                  answers the ECS/EKS JSON;
//   IMDSv2         PUT /latest/api/token, then GETs of
//                  /latest/meta-data/iam/security-credentials/[ROLE] with that
//                  token; a GET without it (IMDSv1) is refused with 401.
// Every answer hands out new credentials that expire --expires-in seconds
// later (whole seconds).  What was issued, and how often each endpoint was
// asked, goes to the --state file (JSON, rewritten after every request),
// which verify-proxy.mjs --issued reads to accept those credentials only
// while they are valid.
//
// usage: node credential-fakes.mjs --state FILE [--sts-port P] [--container-port P]
//          [--imds-port P] [--expires-in SECONDS] [--web-identity-token T]
//          [--role-arn ARN] [--container-token T] [--lifetime SECONDS]
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import http from "node:http";
import { parseArgs } from "node:util";

const { values: options } = parseArgs({
  options: {
    state: { type: "string" },
    "sts-port": { type: "string" },
    "container-port": { type: "string" },
    "imds-port": { type: "string" },
    "expires-in": { type: "string", default: "900" },
    "web-identity-token": { type: "string", default: "web-identity-token" },
    "role-arn": { type: "string", default: "arn:aws:iam::123456789012:role/interactions-cron" },
    "container-token": { type: "string" },
    "role-name": { type: "string", default: "interactions-cron-instance" },
    lifetime: { type: "string", default: "1800" },
  },
});
if (!options.state) {
  console.error("credential-fakes: --state is required");
  process.exit(2);
}

const state = existsSync(options.state)
  ? JSON.parse(readFileSync(options.state, "utf8"))
  : { issued: [], requests: {}, refusals: [] };
const imdsTokens = new Set();

function saveState() {
  writeFileSync(`${options.state}.tmp`, JSON.stringify(state, null, 1));
  renameSync(`${options.state}.tmp`, options.state);
}

function count(kind) {
  state.requests[kind] = (state.requests[kind] || 0) + 1;
}

function refuse(res, kind, status, reason, body = reason, type = "text/plain") {
  state.refusals.push(`${kind}: ${reason}`);
  saveState();
  res.writeHead(status, { "Content-Type": type });
  res.end(body);
}

// issue hands out new credentials of a source; the secret and the token hold
// the characters (+ / =) that signing and XML must carry through unchanged.
function issue(source) {
  const credentials = {
    source,
    accessKeyId: `ASIA${source.replace(/[^a-z]/g, "").toUpperCase()}${state.issued.length}`,
    secretAccessKey: randomBytes(30).toString("base64"),
    sessionToken: randomBytes(120).toString("base64"),
    expiration: (Math.floor(Date.now() / 1000) + Number(options["expires-in"])) * 1000,
  };
  state.issued.push(credentials);
  saveState();
  return credentials;
}

const iso = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

function stsError(code, message) {
  return `<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error>` +
    `<RequestId>credential-fakes</RequestId></ErrorResponse>`;
}

async function sts(req, res) {
  count("sts");
  const form = new URLSearchParams(await readBody(req));
  if (req.method !== "POST" || form.get("Action") !== "AssumeRoleWithWebIdentity" ||
      form.get("Version") !== "2011-06-15" || !form.get("RoleSessionName"))
    return refuse(res, "sts", 400, "not an AssumeRoleWithWebIdentity request",
      stsError("InvalidAction", "Not an AssumeRoleWithWebIdentity request."), "text/xml");
  if (form.get("WebIdentityToken") !== options["web-identity-token"])
    return refuse(res, "sts", 400, "wrong web identity token",
      stsError("InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider."), "text/xml");
  if (form.get("RoleArn") !== options["role-arn"])
    return refuse(res, "sts", 403, `wrong role ${form.get("RoleArn")}`,
      stsError("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"), "text/xml");
  const credentials = issue("sts");
  res.writeHead(200, { "Content-Type": "text/xml" });
  res.end(`<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:lake:exporter</SubjectFromWebIdentityToken>
    <AssumedRoleUser><Arn>${options["role-arn"]}/${form.get("RoleSessionName")}</Arn><AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <SessionToken>${credentials.sessionToken}</SessionToken>
      <SecretAccessKey>${credentials.secretAccessKey}</SecretAccessKey>
      <Expiration>${iso(credentials.expiration)}</Expiration>
      <AccessKeyId>${credentials.accessKeyId}</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>credential-fakes</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`);
}

function credentialsJson(credentials, extra) {
  return JSON.stringify({
    ...extra,
    AccessKeyId: credentials.accessKeyId,
    SecretAccessKey: credentials.secretAccessKey,
    Token: credentials.sessionToken,
    Expiration: iso(credentials.expiration),
  });
}

async function container(req, res) {
  count("container");
  await readBody(req);
  if (req.method !== "GET") return refuse(res, "container", 405, `method ${req.method}`);
  if (options["container-token"] !== undefined && req.headers.authorization !== options["container-token"])
    return refuse(res, "container", 401, "wrong or missing Authorization");
  const credentials = issue("container");
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(credentialsJson(credentials, { RoleArn: options["role-arn"] }));
}

const CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials/";

async function imds(req, res) {
  await readBody(req);
  if (req.method === "PUT" && req.url === "/latest/api/token") {
    count("imdsToken");
    const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
    if (!(ttl >= 1 && ttl <= 21600)) return refuse(res, "imds", 400, "token TTL missing or out of range");
    const token = randomBytes(32).toString("base64");
    imdsTokens.add(token);
    saveState();
    res.writeHead(200, { "Content-Type": "text/plain", "X-aws-ec2-metadata-token-ttl-seconds": String(ttl) });
    return res.end(token);
  }
  if (req.method !== "GET" || !req.url.startsWith(CREDENTIALS_PATH))
    return refuse(res, "imds", 404, `${req.method} ${req.url}`);
  if (!imdsTokens.has(req.headers["x-aws-ec2-metadata-token"]))
    return refuse(res, "imds", 401, "IMDSv1 request (no valid session token)");
  const role = req.url.slice(CREDENTIALS_PATH.length);
  if (role === "") {
    count("imdsRole");
    saveState();
    res.writeHead(200, { "Content-Type": "text/plain" });
    return res.end(options["role-name"]);
  }
  count("imdsCredentials");
  if (role !== options["role-name"]) return refuse(res, "imds", 404, `unknown role ${role}`);
  const credentials = issue("imds");
  res.writeHead(200, { "Content-Type": "text/plain" });
  res.end(credentialsJson(credentials, { Code: "Success", LastUpdated: iso(Date.now()), Type: "AWS-HMAC" }));
}

function serve(port, name, handler) {
  if (!port) return;
  http.createServer((req, res) => handler(req, res).catch((error) => refuse(res, name, 500, error.stack)))
    .listen(Number(port), "127.0.0.1", () => console.log(`credential-fakes: ${name} listening on 127.0.0.1:${port}`));
}

saveState();
serve(options["sts-port"], "sts", sts);
serve(options["container-port"], "container", container);
serve(options["imds-port"], "imds", imds);
setTimeout(() => process.exit(0), Number(options.lifetime) * 1000).unref();
process.on("SIGTERM", () => process.exit(0));
