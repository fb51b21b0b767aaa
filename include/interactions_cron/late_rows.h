/*
 * late_rows.h
 *	  Rows written behind a tenant's checkpoint after it was set.
 */
#ifndef INTERACTIONS_CRON_LATE_ROWS_H
#define INTERACTIONS_CRON_LATE_ROWS_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "interactions_cron/checkpoint.h"
#include "interactions_cron/relations.h"

/* What FindLateRows found. */
typedef struct LateRows
{
	int64		count;			/* rows inserted behind the checkpoint after it was set */
	TimestampTz firstCreatedAt; /* the earliest one's created instant */
} LateRows;

/*
 * What a worker learned of the history's member tables while looking for
 * late rows, kept for its other tenants (see MemberHoldsOlderRow).
 */
typedef struct LateRowsMemory
{
	MemoryContext context;		/* where members lives */
	List	   *members;
} LateRowsMemory;

extern LateRowsMemory *NewLateRowsMemory(MemoryContext context);
extern LateRows FindLateRows(const ConfiguredTable *history, const char *tenantId,
							 CheckpointPosition checkpoint, LateRowsMemory *memory);
extern bool PositionXidOfAnotherSystem(CheckpointPosition checkpoint);

#endif
