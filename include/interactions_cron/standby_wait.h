/*
 * standby_wait.h
 *	  Waiting for the standbys that stream from this server.
 */
#ifndef INTERACTIONS_CRON_STANDBY_WAIT_H
#define INTERACTIONS_CRON_STANDBY_WAIT_H

#include "access/xlogdefs.h"

extern char *WaitForStandbysToFlush(XLogRecPtr target, int timeoutMs);
extern bool SynchronousStandbysHave(XLogRecPtr target);

#endif
