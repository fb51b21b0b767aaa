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
#include "mb/pg_wchar.h"

#include "interactions_cron/export_shared.h"

#define OUTCOME_SKIPPED 0x01
#define OUTCOME_BATCH_FULL 0x02
#define OUTCOME_ERROR 0x04
#define OUTCOME_NOT_EXPORTED 0x08

/*
 * TenantErrorText returns a tenant's error message as its outcome and
 * export_checkpoints.last_error keep it: unchanged when it is valid in the
 * database's encoding, else with each byte outside printable ASCII (and
 * each backslash) written as \xNN.  A message may quote what the lake holds
 * (a file's name, its origin tag, an id read from a line), which anyone who
 * can write to the lake chooses; text not valid in the encoding would fail
 * every reader that converts it, and the restore of a dump that holds it.
 */
char *
TenantErrorText(char *message)
{
	StringInfoData printable;

	if (pg_verifymbstr(message, strlen(message), true))
		return message;
	initStringInfo(&printable);
	for (const unsigned char *byte = (const unsigned char *) message; *byte != '\0'; byte++)
	{
		if (*byte >= 0x20 && *byte < 0x7f && *byte != '\\')
			appendStringInfoChar(&printable, (char) *byte);
		else
			appendStringInfo(&printable, "\\x%02x", *byte);
	}
	return printable.data;
}

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
		(outcome->error != NULL ? OUTCOME_ERROR : 0) |
		(outcome->notExported ? OUTCOME_NOT_EXPORTED : 0);

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
	outcome->notExported = (flags & OUTCOME_NOT_EXPORTED) != 0;
	outcome->error = (flags & OUTCOME_ERROR) ? GetCountedString(message) : NULL;
	fileCount = pq_getmsgint(message, 4);
	outcome->files = NIL;
	for (int i = 0; i < fileCount; i++)
		outcome->files = lappend(outcome->files, GetCountedString(message));
}
