/*
 * subtransaction.h
 *	  Running a piece of work so that its failure rolls back only itself.
 */
#ifndef INTERACTIONS_CRON_SUBTRANSACTION_H
#define INTERACTIONS_CRON_SUBTRANSACTION_H

typedef void (*SubtransactionBody) (void *argument);

extern ErrorData *RunInSubtransaction(SubtransactionBody body, void *argument);

#endif
