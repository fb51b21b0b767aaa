/*
 * main.c
 *	  interactions-cron-http: configuration from the environment, the HTTP
 *	  daemon, and a graceful stop on SIGTERM.
 *
 * Environment: CRON_SECRET (unset or empty: development mode, endpoints
 * open), DATABASE_URL (libpq conninfo or URI; else the PG* variables), HOST
 * (127.0.0.1), PORT (8787), STATEMENT_TIMEOUT_MS (600000).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

/* Slow or idle clients are dropped after this many seconds of silence. */
#define CONNECTION_TIMEOUT_SECONDS 15
/* Request line and headers must fit here; larger ones get 414 or 431. */
#define CONNECTION_MEMORY_BYTES (16 * 1024)
#define MAX_CONNECTIONS 64

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
		fprintf(stderr, "interactions-cron-http: %s must be an integer from 1 to %ld, not \"%s\"\n",
				name, maximum, text);
		exit(2);
	}
	return value;
}

/*
 * LoadConfig reads the environment; the secret is kept only in memory.
 */
static ShimConfig
LoadConfig(void)
{
	ShimConfig	config;
	const char *secret = getenv("CRON_SECRET");
	const char *host = getenv("HOST");
	const char *databaseUrl = getenv("DATABASE_URL");

	config.cronSecret = (secret != NULL && secret[0] != '\0') ? strdup(secret) : NULL;
	config.cronSecretLength = config.cronSecret ? strlen(config.cronSecret) : 0;
	config.databaseUrl = databaseUrl ? databaseUrl : "";
	config.host = (host != NULL && host[0] != '\0') ? host : "127.0.0.1";
	config.port = (uint16_t) IntegerFromEnvironment("PORT", 8787, 65535);
	config.statementTimeoutMs = (int) IntegerFromEnvironment("STATEMENT_TIMEOUT_MS", 600000, 86400000);
	unsetenv("CRON_SECRET");
	return config;
}

/*
 * ListenAddress turns HOST (an IPv4 or IPv6 literal) into a socket address.
 */
static socklen_t
ListenAddress(const ShimConfig *config, struct sockaddr_storage *address)
{
	struct sockaddr_in *ipv4 = (struct sockaddr_in *) address;
	struct sockaddr_in6 *ipv6 = (struct sockaddr_in6 *) address;

	memset(address, 0, sizeof(*address));
	if (inet_pton(AF_INET, config->host, &ipv4->sin_addr) == 1)
	{
		ipv4->sin_family = AF_INET;
		ipv4->sin_port = htons(config->port);
		return sizeof(*ipv4);
	}
	if (inet_pton(AF_INET6, config->host, &ipv6->sin6_addr) == 1)
	{
		ipv6->sin6_family = AF_INET6;
		ipv6->sin6_port = htons(config->port);
		return sizeof(*ipv6);
	}
	fprintf(stderr, "interactions-cron-http: HOST must be an IPv4 or IPv6 address, not \"%s\"\n",
			config->host);
	exit(2);
}

/*
 * WaitForInFlightRequests lets running requests finish after the listening
 * socket closed, for at most the statement timeout and a little more.
 */
static void
WaitForInFlightRequests(const ShimConfig *config)
{
	struct timespec pause = {0, 50 * 1000 * 1000};
	long		waitedMs = 0;

	while (RequestsInFlight() > 0 && waitedMs < config->statementTimeoutMs + 5000L)
	{
		nanosleep(&pause, NULL);
		waitedMs += 50;
	}
}

int
main(void)
{
	ShimConfig	config = LoadConfig();
	struct sockaddr_storage address;
	socklen_t	addressLength = ListenAddress(&config, &address);
	sigset_t	stopSignals;
	int			signalNumber;
	struct MHD_Daemon *daemon;

	/* Threads inherit the mask: only sigwait below sees SIGTERM and SIGINT. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stopSignals);
	sigaddset(&stopSignals, SIGTERM);
	sigaddset(&stopSignals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stopSignals, NULL);

	if (config.cronSecret == NULL)
		fprintf(stderr,
				"interactions-cron-http: WARNING: CRON_SECRET is not set: DEVELOPMENT MODE, "
				"the cron endpoints are open to anyone who can reach %s:%u\n",
				config.host, (unsigned) config.port);

	daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
							  MHD_USE_ITC | MHD_USE_ERROR_LOG |
							  (address.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
							  config.port, NULL, NULL, HandleRequest, &config,
							  MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address,
							  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) CONNECTION_TIMEOUT_SECONDS,
							  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONNECTION_MEMORY_BYTES,
							  MHD_OPTION_CONNECTION_LIMIT, (unsigned int) MAX_CONNECTIONS,
							  MHD_OPTION_NOTIFY_COMPLETED, RequestCompleted, NULL,
							  MHD_OPTION_END);
	(void) addressLength;
	if (daemon == NULL)
	{
		fprintf(stderr, "interactions-cron-http: could not listen on %s:%u\n",
				config.host, (unsigned) config.port);
		return 1;
	}
	fprintf(stderr, "interactions-cron-http: listening on %s:%u\n", config.host, (unsigned) config.port);

	sigwait(&stopSignals, &signalNumber);
	fprintf(stderr, "interactions-cron-http: %s received, finishing %d request(s) in flight\n",
			signalNumber == SIGTERM ? "SIGTERM" : "SIGINT", RequestsInFlight());
	MHD_quiesce_daemon(daemon);
	WaitForInFlightRequests(&config);
	MHD_stop_daemon(daemon);
	fprintf(stderr, "interactions-cron-http: stopped\n");
	return 0;
}
