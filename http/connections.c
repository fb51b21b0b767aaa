/*
 * connections.c
 *	  Keeping slow and idle clients from locking the shim out.
 *
 * libmicrohttpd's connection timeout restarts on every byte, so a client
 * trickling its request head one byte at a time holds a connection (and,
 * here, a thread) for ever.  This file tracks every connection with the
 * phase it is in and enforces what libmicrohttpd cannot:
 *
 * - an absolute deadline (HEADER_TIMEOUT_MS) for a connection waiting for
 *	 its request head, idle keep-alive time included, and for the sending of
 *	 an answer: a sweeper thread closes connections past it;
 * - a cap per client address and a global cap.  A new connection over a cap
 *	 closes the oldest connection of that address (or of all) that is still
 *	 waiting for its request head, so a client that sends its request at once
 *	 always gets in while slow ones are still reading; only when every
 *	 connection is running a request is the new one turned away;
 * - on shutdown, idle kept-alive connections are closed at once.
 *
 * A connection is closed with shutdown(2) on its socket: its own thread then
 * sees the end of the stream and lets libmicrohttpd clean up as usual.  The
 * socket stays valid until libmicrohttpd's "closed" notification, which
 * takes the same lock, so shutdown never hits a reused descriptor.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "shim.h"

/* How often the sweeper looks for connections past their deadline. */
#define SWEEP_INTERVAL_MS 100
/* How often at most the sweeper logs how many connections it closed. */
#define REPORT_INTERVAL_MS 10000

typedef enum ConnectionPhase
{
	PHASE_WAITING,				/* for a request head (new or kept alive) */
	PHASE_RUNNING,				/* the handler is answering a request */
	PHASE_SENDING				/* the answer is queued, being sent */
} ConnectionPhase;

typedef struct TrackedConnection
{
	struct TrackedConnection *previous;
	struct TrackedConnection *next;
	int			socket;
	struct sockaddr_storage address;
	ConnectionPhase phase;
	long		phaseStartedMs; /* monotonic */
	bool		closing;		/* shut down by us, no longer counted */
} TrackedConnection;

static pthread_mutex_t trackerLock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sweeperWake;
static TrackedConnection *connections;
static const ShimConfig *trackerConfig;
static atomic_bool stopping;
static bool sweeperExit;
static pthread_t sweeper;
static long closedOverdue;
static long closedForRoom;

/*
 * MonotonicMs returns a monotonic clock in milliseconds.
 */
long
MonotonicMs(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec * 1000L + now.tv_nsec / 1000000L;
}

/*
 * SameClient says whether two peer addresses are the same host (ports
 * differ between a client's connections).
 */
static bool
SameClient(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *) a)->sin_addr.s_addr ==
			((const struct sockaddr_in *) b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *) a)->sin6_addr,
					  &((const struct sockaddr_in6 *) b)->sin6_addr, sizeof(struct in6_addr)) == 0;
	return false;
}

/*
 * CloseTracked shuts a connection's socket down; its thread finishes it.
 * Caller holds trackerLock.
 */
static void
CloseTracked(TrackedConnection *connection)
{
	shutdown(connection->socket, SHUT_RDWR);
	connection->closing = true;
}

/*
 * CountOpen counts the connections not being closed, of one client or
 * (client NULL) of all.  Caller holds trackerLock.
 */
static int
CountOpen(const struct sockaddr_storage *client)
{
	int			count = 0;

	for (TrackedConnection *c = connections; c != NULL; c = c->next)
	{
		if (!c->closing && (client == NULL || SameClient(&c->address, client)))
			count++;
	}
	return count;
}

/*
 * OldestWaiting returns the connection that has waited longest for its
 * request head, of one client or (client NULL) of all, or NULL when every
 * connection is busy.  Caller holds trackerLock.
 */
static TrackedConnection *
OldestWaiting(const struct sockaddr_storage *client)
{
	TrackedConnection *oldest = NULL;

	for (TrackedConnection *c = connections; c != NULL; c = c->next)
	{
		if (c->closing || c->phase != PHASE_WAITING ||
			(client != NULL && !SameClient(&c->address, client)))
			continue;
		if (oldest == NULL || c->phaseStartedMs <= oldest->phaseStartedMs)
			oldest = c;
	}
	return oldest;
}

/*
 * MakeRoom enforces the caps after a new connection joined: over a cap, the
 * oldest connection still waiting for its request head goes (the new one
 * itself when it is the only one waiting).  Caller holds trackerLock.
 */
static void
MakeRoom(TrackedConnection *newcomer)
{
	TrackedConnection *victim;

	if (CountOpen(&newcomer->address) > trackerConfig->maxConnectionsPerClient &&
		(victim = OldestWaiting(&newcomer->address)) != NULL)
	{
		CloseTracked(victim);
		closedForRoom++;
	}
	if (CountOpen(NULL) > trackerConfig->maxConnections &&
		(victim = OldestWaiting(NULL)) != NULL)
	{
		CloseTracked(victim);
		closedForRoom++;
	}
}

/*
 * ConnectionStarted registers a new connection and enforces the caps.
 */
static TrackedConnection *
ConnectionStarted(struct MHD_Connection *connection)
{
	TrackedConnection *tracked = calloc(1, sizeof(TrackedConnection));
	const union MHD_ConnectionInfo *addressInfo;

	if (tracked == NULL)
		abort();

	/*
	 * Each answer is read before the next question: libmicrohttpd 1.0
	 * returns some of them in one scratch union per connection, which the
	 * next call overwrites (0.9 did not).
	 */
	tracked->socket = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD)->connect_fd;
	addressInfo = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	memcpy(&tracked->address, addressInfo->client_addr,
		   addressInfo->client_addr->sa_family == AF_INET6 ?
		   sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	tracked->phase = PHASE_WAITING;
	tracked->phaseStartedMs = MonotonicMs();

	pthread_mutex_lock(&trackerLock);
	tracked->next = connections;
	if (connections != NULL)
		connections->previous = tracked;
	connections = tracked;
	MakeRoom(tracked);
	pthread_mutex_unlock(&trackerLock);
	return tracked;
}

/*
 * ConnectionClosed forgets a connection libmicrohttpd is about to close.
 */
static void
ConnectionClosed(TrackedConnection *tracked)
{
	pthread_mutex_lock(&trackerLock);
	if (tracked->previous != NULL)
		tracked->previous->next = tracked->next;
	else
		connections = tracked->next;
	if (tracked->next != NULL)
		tracked->next->previous = tracked->previous;
	pthread_mutex_unlock(&trackerLock);
	free(tracked);
}

/*
 * NotifyConnection is libmicrohttpd's connection callback
 * (MHD_OPTION_NOTIFY_CONNECTION): it tracks connections from their start to
 * their close.
 */
void
NotifyConnection(void *cls, struct MHD_Connection *connection, void **socketContext,
				 enum MHD_ConnectionNotificationCode code)
{
	(void) cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		*socketContext = ConnectionStarted(connection);
	else if (*socketContext != NULL)
	{
		ConnectionClosed(*socketContext);
		*socketContext = NULL;
	}
}

/*
 * SetConnectionPhase records what a connection is doing now.
 */
static void
SetConnectionPhase(struct MHD_Connection *connection, ConnectionPhase phase)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	TrackedConnection *tracked = info ? info->socket_context : NULL;

	if (tracked == NULL)
		return;
	pthread_mutex_lock(&trackerLock);
	tracked->phase = phase;
	tracked->phaseStartedMs = MonotonicMs();
	pthread_mutex_unlock(&trackerLock);
}

/*
 * ConnectionRunning marks a connection whose request head arrived: it is
 * no longer subject to the deadline or to being closed for room.
 */
void
ConnectionRunning(struct MHD_Connection *connection)
{
	SetConnectionPhase(connection, PHASE_RUNNING);
}

/*
 * ConnectionSending marks a connection whose answer is queued: sending it
 * must finish within the deadline.
 */
void
ConnectionSending(struct MHD_Connection *connection)
{
	SetConnectionPhase(connection, PHASE_SENDING);
}

/*
 * ConnectionWaiting marks a connection whose answer was sent: the next
 * request head must arrive within the deadline.
 */
void
ConnectionWaiting(struct MHD_Connection *connection)
{
	SetConnectionPhase(connection, PHASE_WAITING);
}

/*
 * CloseOverdue closes connections past their deadline and, once the shim is
 * stopping, every connection waiting for a request.  Caller holds
 * trackerLock.
 */
static void
CloseOverdue(long nowMs)
{
	for (TrackedConnection *c = connections; c != NULL; c = c->next)
	{
		if (c->closing || c->phase == PHASE_RUNNING)
			continue;
		if (nowMs - c->phaseStartedMs > trackerConfig->headerTimeoutMs)
		{
			CloseTracked(c);
			closedOverdue++;
		}
		else if (c->phase == PHASE_WAITING && atomic_load(&stopping))
			CloseTracked(c);
	}
}

/*
 * TakeClosedCounts hands over how many connections were closed since the
 * last report, once per REPORT_INTERVAL_MS (else zeros), so a flood of
 * slow clients shows in the log without flooding it.  Caller holds
 * trackerLock.
 */
static void
TakeClosedCounts(long nowMs, long *lastReportMs, long *overdue, long *forRoom)
{
	*overdue = 0;
	*forRoom = 0;
	if (nowMs - *lastReportMs < REPORT_INTERVAL_MS)
		return;
	*overdue = closedOverdue;
	*forRoom = closedForRoom;
	closedOverdue = 0;
	closedForRoom = 0;
	*lastReportMs = nowMs;
}

/*
 * Sweep is the sweeper thread: every SWEEP_INTERVAL_MS it closes overdue
 * connections, until StopConnectionSweeper.  It logs without the lock, so
 * a slow stderr never holds up new connections.
 */
static void *
Sweep(void *unused)
{
	long		lastReportMs = MonotonicMs();

	(void) unused;
	pthread_mutex_lock(&trackerLock);
	while (!sweeperExit)
	{
		struct timespec wakeAt;
		long		nowMs = MonotonicMs();
		long		overdue;
		long		forRoom;

		CloseOverdue(nowMs);
		TakeClosedCounts(nowMs, &lastReportMs, &overdue, &forRoom);
		if (overdue > 0 || forRoom > 0)
		{
			pthread_mutex_unlock(&trackerLock);
			ShimLog("closed %ld connection(s) past the %d ms deadline and %ld waiting one(s) "
					"to make room for new clients", overdue, trackerConfig->headerTimeoutMs, forRoom);
			pthread_mutex_lock(&trackerLock);
		}
		clock_gettime(CLOCK_MONOTONIC, &wakeAt);
		wakeAt.tv_nsec += SWEEP_INTERVAL_MS * 1000000L;
		wakeAt.tv_sec += wakeAt.tv_nsec / 1000000000L;
		wakeAt.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&sweeperWake, &trackerLock, &wakeAt);
	}
	pthread_mutex_unlock(&trackerLock);
	return NULL;
}

/*
 * StartConnectionSweeper starts the sweeper thread before the daemon.
 */
void
StartConnectionSweeper(const ShimConfig *config)
{
	pthread_condattr_t attributes;

	trackerConfig = config;
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&sweeperWake, &attributes);
	pthread_condattr_destroy(&attributes);
	if (pthread_create(&sweeper, NULL, Sweep, NULL) != 0)
	{
		ShimLog("could not start the connection sweeper thread");
		exit(1);
	}
}

/*
 * StopConnectionSweeper ends the sweeper thread after the daemon stopped.
 */
void
StopConnectionSweeper(void)
{
	pthread_mutex_lock(&trackerLock);
	sweeperExit = true;
	pthread_cond_signal(&sweeperWake);
	pthread_mutex_unlock(&trackerLock);
	pthread_join(sweeper, NULL);
}

/*
 * StopServingRequests starts the shutdown: connections waiting for a
 * request are closed now, and those with a request in flight close after
 * answering it (see ShimStopping).
 */
void
StopServingRequests(void)
{
	atomic_store(&stopping, true);
	pthread_mutex_lock(&trackerLock);
	CloseOverdue(MonotonicMs());
	pthread_mutex_unlock(&trackerLock);
}

/*
 * ShimStopping says whether SIGTERM or SIGINT arrived.
 */
bool
ShimStopping(void)
{
	return atomic_load(&stopping);
}
