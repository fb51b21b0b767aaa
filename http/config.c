/*
 * config.c
 *	  The shim's configuration, read once from the environment at start-up,
 *	  and the checks that refuse an unsafe one.
 *
 * The secret comes from CRON_SECRET or from the file CRON_SECRET_FILE
 * names.  Variables holding secrets are scrubbed from the process's
 * environment block, which /proc/<pid>/environ shows: unsetenv() alone only
 * drops the pointer and leaves the bytes there.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

/* A secret longer than this is a mistake (a wrong file), not a secret. */
#define MAX_SECRET_BYTES 4096

/*
 * IntegerFromEnvironment reads a positive integer variable or exits with a
 * message naming it.
 */
static long
IntegerFromEnvironment(const char *name, long defaultValue, long maximum)
{
	const char *text = getenv(name);
	char	   *end;
	long		value;

	if (text == NULL || text[0] == '\0')
		return defaultValue;
	errno = 0;
	value = strtol(text, &end, 10);
	if (errno != 0 || *end != '\0' || value < 1 || value > maximum)
	{
		char	   *quoted = LogQuoted(text);

		ShimLog("%s must be an integer from 1 to %ld, not %s", name, maximum, quoted);
		exit(2);
	}
	return value;
}

/*
 * FlagFromEnvironment reads a variable that must be unset, 0 or 1.
 */
static bool
FlagFromEnvironment(const char *name)
{
	const char *text = getenv(name);

	if (text == NULL || text[0] == '\0' || strcmp(text, "0") == 0)
		return false;
	if (strcmp(text, "1") == 0)
		return true;
	ShimLog("%s must be 0 or 1", name);
	exit(2);
}

/*
 * TakeFromEnvironment returns a copy of a variable's value (NULL if unset
 * or empty), then overwrites the value in the environment block and unsets
 * it, so neither the environment nor /proc/<pid>/environ holds it any more.
 */
static char *
TakeFromEnvironment(const char *name)
{
	char	   *value = getenv(name);
	char	   *copy = NULL;

	if (value == NULL)
		return NULL;
	if (value[0] != '\0')
	{
		copy = strdup(value);
		if (copy == NULL)
			abort();
	}
	explicit_bzero(value, strlen(value));
	unsetenv(name);
	return copy;
}

/*
 * ReadSecretFile returns the secret in a file, without trailing line ends
 * (echo adds one).  An unreadable, empty or oversized file stops the shim:
 * it must not fall back to development mode because of a broken mount.
 */
static char *
ReadSecretFile(const char *path)
{
	char		buffer[MAX_SECRET_BYTES + 1];
	FILE	   *file = fopen(path, "r");
	size_t		length;
	char	   *secret;
	char	   *quotedPath = LogQuoted(path);

	if (file == NULL)
	{
		ShimLog("could not open CRON_SECRET_FILE %s: %s", quotedPath, strerror(errno));
		exit(2);
	}
	length = fread(buffer, 1, sizeof(buffer), file);
	if (ferror(file) || length > MAX_SECRET_BYTES)
	{
		ShimLog("could not read CRON_SECRET_FILE %s, or it is longer than %d bytes",
				quotedPath, MAX_SECRET_BYTES);
		exit(2);
	}
	fclose(file);
	while (length > 0 && (buffer[length - 1] == '\n' || buffer[length - 1] == '\r'))
		length--;
	if (length == 0 || memchr(buffer, '\0', length) != NULL)
	{
		ShimLog("CRON_SECRET_FILE %s is empty or contains a NUL byte", quotedPath);
		exit(2);
	}
	secret = strndup(buffer, length);
	explicit_bzero(buffer, sizeof(buffer));
	if (secret == NULL)
		abort();
	free(quotedPath);
	return secret;
}

/*
 * LoadSecret returns the secret from CRON_SECRET or CRON_SECRET_FILE (not
 * both), or NULL for development mode, which only an unset secret means: a
 * CRON_SECRET set but empty (an unfilled template, a missing substitution)
 * stops the shim, as an empty CRON_SECRET_FILE does.
 */
static char *
LoadSecret(void)
{
	bool		secretSet = getenv("CRON_SECRET") != NULL;
	char	   *secret = TakeFromEnvironment("CRON_SECRET");
	const char *path = getenv("CRON_SECRET_FILE");

	if (secretSet && secret == NULL)
	{
		ShimLog("CRON_SECRET is set but empty; unset it for development mode");
		exit(2);
	}
	if (path == NULL || path[0] == '\0')
		return secret;
	if (secret != NULL)
	{
		ShimLog("set CRON_SECRET or CRON_SECRET_FILE, not both");
		exit(2);
	}
	return ReadSecretFile(path);
}

/*
 * LoadConfig reads the environment; secrets are kept only in memory.
 */
ShimConfig
LoadConfig(void)
{
	ShimConfig	config;
	const char *host = getenv("HOST");
	char	   *databaseUrl = TakeFromEnvironment("DATABASE_URL");

	config.cronSecret = LoadSecret();
	config.cronSecretLength = config.cronSecret ? strlen(config.cronSecret) : 0;
	config.metricsSecret = TakeFromEnvironment("METRICS_SECRET");
	config.metricsSecretLength = config.metricsSecret ? strlen(config.metricsSecret) : 0;
	config.metricsTimeoutMs = (int) IntegerFromEnvironment("METRICS_TIMEOUT_MS", 5000, 600000);
	config.allowUnauthenticated = FlagFromEnvironment("ALLOW_UNAUTHENTICATED");
	/* DATABASE_URL may carry a password, so it is scrubbed as well. */
	config.databaseUrl = databaseUrl ? databaseUrl : "";
	config.host = (host != NULL && host[0] != '\0') ? host : "127.0.0.1";
	config.port = (uint16_t) IntegerFromEnvironment("PORT", 8787, 65535);
	config.statementTimeoutMs = (int) IntegerFromEnvironment("STATEMENT_TIMEOUT_MS", 600000, 86400000);
	config.maxRuntimeLimitMs = (int) IntegerFromEnvironment("MAX_RUNTIME_LIMIT_MS",
															config.statementTimeoutMs / 2, 86400000);
	/* A budget the statement timeout cuts short would end every drain in an error. */
	if (config.maxRuntimeLimitMs >= config.statementTimeoutMs)
	{
		ShimLog("MAX_RUNTIME_LIMIT_MS (%d) must be less than STATEMENT_TIMEOUT_MS (%d)",
				config.maxRuntimeLimitMs, config.statementTimeoutMs);
		exit(2);
	}
	config.connectTimeoutMs = (int) IntegerFromEnvironment("CONNECT_TIMEOUT_MS", 10000, 600000);
	config.headerTimeoutMs = (int) IntegerFromEnvironment("HEADER_TIMEOUT_MS", 10000, 600000);
	config.maxConnections = (int) IntegerFromEnvironment("MAX_CONNECTIONS", 256, 10000);
	config.maxConnectionsPerClient = (int) IntegerFromEnvironment("MAX_CONNECTIONS_PER_CLIENT", 16, 10000);
	return config;
}

/*
 * ListenAddress turns HOST (an IPv4 or IPv6 literal) into a socket address.
 */
void
ListenAddress(const ShimConfig *config, struct sockaddr_storage *address)
{
	struct sockaddr_in *ipv4 = (struct sockaddr_in *) address;
	struct sockaddr_in6 *ipv6 = (struct sockaddr_in6 *) address;
	char	   *quotedHost;

	memset(address, 0, sizeof(*address));
	if (inet_pton(AF_INET, config->host, &ipv4->sin_addr) == 1)
	{
		ipv4->sin_family = AF_INET;
		ipv4->sin_port = htons(config->port);
		return;
	}
	if (inet_pton(AF_INET6, config->host, &ipv6->sin6_addr) == 1)
	{
		ipv6->sin6_family = AF_INET6;
		ipv6->sin6_port = htons(config->port);
		return;
	}
	quotedHost = LogQuoted(config->host);
	ShimLog("HOST must be an IPv4 or IPv6 address, not %s", quotedHost);
	exit(2);
}

/*
 * IsLoopback says whether an address is only reachable from this machine:
 * 127.0.0.0/8, ::1, or 127.x mapped into IPv6.
 */
static bool
IsLoopback(const struct sockaddr_storage *address)
{
	const struct sockaddr_in *ipv4 = (const struct sockaddr_in *) address;
	const struct sockaddr_in6 *ipv6 = (const struct sockaddr_in6 *) address;

	if (address->ss_family == AF_INET)
		return (ntohl(ipv4->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&ipv6->sin6_addr) ||
		(IN6_IS_ADDR_V4MAPPED(&ipv6->sin6_addr) && ipv6->sin6_addr.s6_addr[12] == 127);
}

/*
 * CheckStartupSafety warns about running as root and refuses to open the
 * endpoints without a secret to anything but this machine, unless
 * ALLOW_UNAUTHENTICATED=1 says that is meant.
 */
void
CheckStartupSafety(const ShimConfig *config, const struct sockaddr_storage *address)
{
	if (geteuid() == 0)
		ShimLog("WARNING: running as root; the shim needs no privilege, run it as an unprivileged user");
	if (config->cronSecret != NULL)
		return;
	if (!IsLoopback(address) && !config->allowUnauthenticated)
	{
		ShimLog("refusing to listen on %s without CRON_SECRET: anyone who can reach it could run "
				"the jobs; set CRON_SECRET or CRON_SECRET_FILE, listen on a loopback address, "
				"or set ALLOW_UNAUTHENTICATED=1 if that is really meant", config->host);
		exit(2);
	}
	ShimLog("WARNING: CRON_SECRET is not set: DEVELOPMENT MODE, the cron endpoints are open "
			"to anyone who can reach %s:%u", config->host, (unsigned) config->port);
}
