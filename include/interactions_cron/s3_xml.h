/*
 * s3_xml.h
 *	  Reading S3's XML answers with libxml2.
 */
#ifndef INTERACTIONS_CRON_S3_XML_H
#define INTERACTIONS_CRON_S3_XML_H

#include "nodes/pg_list.h"

/* One page of a ListObjectsV2 answer. */
typedef struct S3ListPage
{
	List	   *keys;			/* the keys, as C strings */
	bool		truncated;		/* IsTruncated: more pages follow */
	char	   *nextToken;		/* NextContinuationToken, or NULL */
} S3ListPage;

extern char *S3XmlElementText(const char *xml, size_t length, const char *name);
extern bool S3XmlParseListPage(const char *xml, size_t length, int maxKeys, S3ListPage *page);

#endif
