/*
 * subtransaction.c
 *	  The internal-subtransaction pattern of the PL handlers, in one place.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "interactions_cron/subtransaction.h"

/*
 * RunInSubtransaction runs body(argument) in an internal subtransaction.  On
 * success the subtransaction is committed into the caller's and NULL is
 * returned; on error it is rolled back and the error, copied into the
 * caller's memory context, is returned for the caller to report or rethrow.
 * Either way the caller's memory context and resource owner are current again.
 */
ErrorData *
RunInSubtransaction(SubtransactionBody body, void *argument)
{
	MemoryContext callerContext = CurrentMemoryContext;
	ResourceOwner callerOwner = CurrentResourceOwner;
	ErrorData  *volatile error = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(callerContext);

	PG_TRY();
	{
		body(argument);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(callerContext);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();

	MemoryContextSwitchTo(callerContext);
	CurrentResourceOwner = callerOwner;
	return error;
}
