/*
 * watermark.h
 *	  The safe upper bound of created_at for an export.
 */
#ifndef INTERACTIONS_CRON_WATERMARK_H
#define INTERACTIONS_CRON_WATERMARK_H

#include "datatype/timestamp.h"

extern TimestampTz ExportWatermark(char **silentTransaction);

#endif
