/*
 * main.c
 *	  interactions-cron-http: the HTTP daemon, and a graceful stop on SIGTERM.
 *
 * Environment (see config.c and doc/http-shim.md): CRON_SECRET or
 * CRON_SECRET_FILE (neither: development mode, endpoints open, loopback
 * only unless ALLOW_UNAUTHENTICATED=1), DATABASE_URL (libpq conninfo or
 * URI; else the PG* variables), METRICS_SECRET (unset: /metrics takes
 * CRON_SECRET), METRICS_TIMEOUT_MS (5000), HOST (127.0.0.1), PORT (8787),
 * STATEMENT_TIMEOUT_MS (600000), CONNECT_TIMEOUT_MS (10000),
 * HEADER_TIMEOUT_MS (10000), MAX_CONNECTIONS (256),
 * MAX_CONNECTIONS_PER_CLIENT (16).
 */
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

/* Request line and headers must fit here; larger ones get 414 or 431. */
#define CONNECTION_MEMORY_BYTES (16 * 1024)

/*
 * WaitForInFlightRequests lets running requests finish after the listening
 * socket closed, for at most the longest a request can take: connecting,
 * the statement timeout, and the grace the shim gives the server beyond it.
 */
static void
WaitForInFlightRequests(const ShimConfig *config)
{
	struct timespec pause = {0, 20 * 1000 * 1000};
	long		deadlineMs = MonotonicMs() + config->statementTimeoutMs +
		2L * config->connectTimeoutMs + 1000;

	while (RequestsInFlight() > 0 && MonotonicMs() < deadlineMs)
		nanosleep(&pause, NULL);
}

/*
 * StartDaemon starts libmicrohttpd: a thread per connection, so a long
 * export blocks nobody; connection tracking (connections.c) for deadlines
 * and caps; libmicrohttpd's own connection limit only as a backstop above
 * ours, for connections already closed by us but not yet cleaned up.
 */
static struct MHD_Daemon *
StartDaemon(ShimConfig *config, const struct sockaddr_storage *address)
{
	return MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
							MHD_USE_ITC | MHD_USE_ERROR_LOG |
							(address->ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
							config->port, NULL, NULL, HandleRequest, config,
							/* First, or libmicrohttpd logs some messages itself. */
							MHD_OPTION_EXTERNAL_LOGGER, LogFromMhd, NULL,
							MHD_OPTION_SOCK_ADDR, (const struct sockaddr *) address,
							MHD_OPTION_CONNECTION_TIMEOUT,
							(unsigned int) (config->headerTimeoutMs + 999) / 1000,
							MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONNECTION_MEMORY_BYTES,
							MHD_OPTION_CONNECTION_LIMIT, (unsigned int) config->maxConnections * 2,
							MHD_OPTION_URI_LOG_CALLBACK, RequestArrived, NULL,
							MHD_OPTION_NOTIFY_COMPLETED, RequestCompleted, NULL,
							MHD_OPTION_NOTIFY_CONNECTION, NotifyConnection, NULL,
							MHD_OPTION_END);
}

/*
 * Stop ends the daemon: the listening socket is closed at once, so new
 * connections are refused rather than left waiting in its backlog; idle
 * connections are closed; requests in flight finish, their connections
 * closing after the answer; then the daemon stops.
 */
static void
Stop(struct MHD_Daemon *daemon, const ShimConfig *config, int signalNumber)
{
	MHD_socket listener;

	ShimLog("%s received, finishing %d request(s) in flight",
			signalNumber == SIGTERM ? "SIGTERM" : "SIGINT", RequestsInFlight());
	StopServingRequests();
	listener = MHD_quiesce_daemon(daemon);
	if (listener != MHD_INVALID_SOCKET)
		close(listener);
	WaitForInFlightRequests(config);
	MHD_stop_daemon(daemon);
	StopConnectionSweeper();
	ShimLog("stopped");
}

int
main(void)
{
	ShimConfig	config = LoadConfig();
	struct sockaddr_storage address;
	sigset_t	stopSignals;
	int			signalNumber;
	struct MHD_Daemon *daemon;

	ListenAddress(&config, &address);
	CheckStartupSafety(&config, &address);

	/* Threads inherit the mask: only sigwait below sees SIGTERM and SIGINT. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stopSignals);
	sigaddset(&stopSignals, SIGTERM);
	sigaddset(&stopSignals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stopSignals, NULL);

	StartConnectionSweeper(&config);
	daemon = StartDaemon(&config, &address);
	if (daemon == NULL)
	{
		ShimLog("could not listen on %s:%u", config.host, (unsigned) config.port);
		return 1;
	}
	ShimLog("listening on %s:%u", config.host, (unsigned) config.port);

	sigwait(&stopSignals, &signalNumber);
	Stop(daemon, &config, signalNumber);
	return 0;
}
