/*
 * shim.h
 *	  interactions-cron-http: the seed's two cron endpoints over HTTP, calling
 *	  the SQL functions of the interactions_cron extension through libpq.
 */
#ifndef INTERACTIONS_CRON_HTTP_SHIM_H
#define INTERACTIONS_CRON_HTTP_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

/* Configuration, read once from the environment at start-up. */
typedef struct ShimConfig
{
	const char *cronSecret;		/* NULL: development mode, endpoints open */
	size_t		cronSecretLength;
	const char *databaseUrl;	/* libpq conninfo or URI; "" means the PG* variables */
	const char *host;
	uint16_t	port;
	int			statementTimeoutMs;
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

/* database.c */
extern JsonResponse RunSqlJob(const ShimConfig *config, const char *sql);
extern JsonResponse CheckDatabaseHealth(const ShimConfig *config);
extern char *JsonString(const char *text);

/* routes.c */
extern enum MHD_Result HandleRequest(void *cls, struct MHD_Connection *connection,
									 const char *url, const char *method,
									 const char *version, const char *uploadData,
									 size_t *uploadDataSize, void **requestState);
extern void RequestCompleted(void *cls, struct MHD_Connection *connection,
							 void **requestState, enum MHD_RequestTerminationCode code);
extern int	RequestsInFlight(void);

#endif
