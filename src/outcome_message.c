/*
 * outcome_message.c
 *	  The message a worker sends the caller for each tenant it exported, and
 *	  the tenant list they share.
 *
 * Strings travel as counted bytes, never through the client encoding
 * conversion of pq_sendstring: the worker has no client.
 */
#include "postgres.h"

#include "libpq/pqformat.h"

#include "interactions_cron/export_shared.h"

#define OUTCOME_SKIPPED 0x01
#define OUTCOME_BATCH_FULL 0x02
#define OUTCOME_ERROR 0x04

/*
 * SharedTenantId returns the id of the index-th tenant of the run.
 */
const char *
SharedTenantId(const ExportTenantIds *tenants, int index)
{
	return (const char *) tenants + tenants->offsets[index];
}

/*
 * SendCountedString appends a string as its length and its bytes.
 */
static void
SendCountedString(StringInfo message, const char *value)
{
	int			length = strlen(value);

	pq_sendint32(message, length);
	pq_sendbytes(message, value, length);
}

/*
 * GetCountedString reads a string written by SendCountedString.
 */
static char *
GetCountedString(StringInfo message)
{
	int			length = pq_getmsgint(message, 4);

	return pnstrdup(pq_getmsgbytes(message, length), length);
}

/*
 * SerializeOutcome writes one tenant's outcome as a message.
 */
void
SerializeOutcome(StringInfo message, const TenantOutcome *outcome)
{
	ListCell   *cell;
	int			flags = (outcome->skipped ? OUTCOME_SKIPPED : 0) |
		(outcome->batchFull ? OUTCOME_BATCH_FULL : 0) |
		(outcome->error != NULL ? OUTCOME_ERROR : 0);

	pq_sendint32(message, outcome->tenantIndex);
	pq_sendint64(message, (int64) outcome->exported);
	pq_sendbyte(message, flags);
	if (outcome->error != NULL)
		SendCountedString(message, outcome->error);
	pq_sendint32(message, list_length(outcome->files));
	foreach(cell, outcome->files)
		SendCountedString(message, lfirst(cell));
}

/*
 * DeserializeOutcome reads a message into outcome, in the current memory
 * context.
 */
void
DeserializeOutcome(StringInfo message, TenantOutcome *outcome)
{
	int			flags;
	int			fileCount;

	outcome->tenantIndex = pq_getmsgint(message, 4);
	outcome->exported = (uint64) pq_getmsgint64(message);
	flags = pq_getmsgbyte(message);
	outcome->skipped = (flags & OUTCOME_SKIPPED) != 0;
	outcome->batchFull = (flags & OUTCOME_BATCH_FULL) != 0;
	outcome->error = (flags & OUTCOME_ERROR) ? GetCountedString(message) : NULL;
	fileCount = pq_getmsgint(message, 4);
	outcome->files = NIL;
	for (int i = 0; i < fileCount; i++)
		outcome->files = lappend(outcome->files, GetCountedString(message));
}
