/*
 * xml_response.h
 *	  Reading a web service's XML response (S3, STS) with libxml2.
 */
#ifndef INTERACTIONS_CRON_XML_RESPONSE_H
#define INTERACTIONS_CRON_XML_RESPONSE_H

#include "nodes/pg_list.h"

/* One page of a ListObjectsV2 answer. */
typedef struct XmlListPage
{
	List	   *keys;			/* the keys, as C strings */
	bool		truncated;		/* IsTruncated: more pages follow */
	char	   *nextToken;		/* NextContinuationToken, or NULL */
} XmlListPage;

extern bool XmlResponseTexts(const char *xml, size_t length, int count,
							 const char *const *names, char **texts);
extern bool XmlReadListPage(const char *xml, size_t length, int maxKeys, XmlListPage *page);

#endif
