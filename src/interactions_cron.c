/*
 * interactions_cron.c
 *	  Module entry point of the interactions_cron extension.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "interactions_cron/guc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

/*
 * _PG_init registers the extension's settings when the library is loaded,
 * noting whether that happened through shared_preload_libraries.
 */
void
_PG_init(void)
{
	LoadedAtServerStart = process_shared_preload_libraries_in_progress;
	DefineSettings();
}
