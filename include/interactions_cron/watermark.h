/*
 * watermark.h
 *	  The instant below which no more interaction rows can appear.
 */
#ifndef INTERACTIONS_CRON_WATERMARK_H
#define INTERACTIONS_CRON_WATERMARK_H

#include "datatype/timestamp.h"

extern TimestampTz ExportWatermark(void);

#endif
