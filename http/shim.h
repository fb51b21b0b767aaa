/*
 * shim.h
 *	  interactions-cron-http: the seed's two cron endpoints over HTTP, calling
 *	  the SQL functions of the interactions_cron extension through libpq.
 */
#ifndef INTERACTIONS_CRON_HTTP_SHIM_H
#define INTERACTIONS_CRON_HTTP_SHIM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>

/* Configuration, read once from the environment at start-up. */
typedef struct ShimConfig
{
	const char *cronSecret;		/* NULL: development mode, endpoints open */
	size_t		cronSecretLength;
	const char *metricsSecret;	/* NULL: /metrics takes cronSecret */
	size_t		metricsSecretLength;
	int			metricsTimeoutMs;	/* bound of a /metrics answer */
	bool		allowUnauthenticated;	/* development mode beyond loopback */
	const char *databaseUrl;	/* libpq conninfo or URI; "" means the PG* variables */
	const char *host;
	uint16_t	port;
	int			statementTimeoutMs;
	int			maxRuntimeLimitMs;	/* the largest ?max_runtime= a caller may ask */
	int			connectTimeoutMs;	/* bound of every database wait but a job's */
	int			headerTimeoutMs;	/* absolute deadline of a request head */
	int			maxConnections;
	int			maxConnectionsPerClient;
} ShimConfig;

/* An HTTP answer: status and a JSON body the caller frees. */
typedef struct JsonResponse
{
	unsigned int status;
	char	   *body;
} JsonResponse;

/* auth.c */
extern bool RequestIsAuthorized(const ShimConfig *config, const char *authorization,
								const char *cronSecretHeader);
extern bool MetricsRequestIsAuthorized(const ShimConfig *config, const char *authorization,
									   const char *secretHeader);

/* config.c */
extern ShimConfig LoadConfig(void);
extern void ListenAddress(const ShimConfig *config, struct sockaddr_storage *address);
extern void CheckStartupSafety(const ShimConfig *config, const struct sockaddr_storage *address);

/* connections.c */
extern long MonotonicMs(void);
extern void NotifyConnection(void *cls, struct MHD_Connection *connection, void **socketContext,
							 enum MHD_ConnectionNotificationCode code);
extern void ConnectionRunning(struct MHD_Connection *connection);
extern void ConnectionSending(struct MHD_Connection *connection);
extern void ConnectionWaiting(struct MHD_Connection *connection);
extern void StartConnectionSweeper(const ShimConfig *config);
extern void StopConnectionSweeper(void);
extern void StopServingRequests(void);
extern bool ShimStopping(void);

/* database.c */
extern JsonResponse RunSqlJob(const ShimConfig *config, const char *sql, const char *parameter,
							  int clientSocket);
extern JsonResponse CheckDatabaseHealth(const ShimConfig *config);
extern struct pg_result *QueryReadOnly(const ShimConfig *config, const char *sql, int timeoutMs);

/* log.c */
extern char *LogQuoted(const char *text);
extern void ShimLogV(const char *format, va_list arguments) __attribute__((format(printf, 1, 0)));
extern void ShimLog(const char *format,...) __attribute__((format(printf, 1, 2)));
extern void LogFromMhd(void *cls, const char *format, va_list arguments);

/* metrics.c */
extern char *MetricsPage(const ShimConfig *config, bool openMetrics);
extern bool AcceptsOpenMetrics(const char *accept);

/* routes.c */
extern void *RequestArrived(void *cls, const char *uri, struct MHD_Connection *connection);
extern enum MHD_Result HandleRequest(void *cls, struct MHD_Connection *connection,
									 const char *url, const char *method,
									 const char *version, const char *uploadData,
									 size_t *uploadDataSize, void **requestState);
extern void RequestCompleted(void *cls, struct MHD_Connection *connection,
							 void **requestState, enum MHD_RequestTerminationCode code);
extern int	RequestsInFlight(void);

#endif
