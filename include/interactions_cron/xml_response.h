/*
 * xml_response.h
 *	  Reading the elements of a web service's XML response with libxml2.
 */
#ifndef INTERACTIONS_CRON_XML_RESPONSE_H
#define INTERACTIONS_CRON_XML_RESPONSE_H

extern bool XmlResponseTexts(const char *xml, size_t length, int count,
							 const char *const *names, char **texts);

#endif
