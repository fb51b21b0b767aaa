/*
 * preconditions.h
 *	  What every entry point checks before it touches anything.
 */
#ifndef INTERACTIONS_CRON_PRECONDITIONS_H
#define INTERACTIONS_CRON_PRECONDITIONS_H

extern void RequireUsableDatabase(void);
extern void RequireUtf8Database(void);
extern Oid	ExtensionOwnerId(void);
extern bool SqlHasRunTotals(void);

#endif
