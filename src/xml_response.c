/*
 * xml_response.c
 *	  Reading the elements of a web service's XML response (S3, STS) with
 *	  libxml2.
 *
 * A response comes from the network, so it is parsed as untrusted text:
 * no network access (XML_PARSE_NONET), no DTD loaded and no entity
 * substituted (neither XML_PARSE_DTDLOAD nor XML_PARSE_NOENT), and no
 * message of libxml2's own on the server's stderr, since the text may hold
 * secrets (a session token).  libxml2 allocates with malloc: every result
 * is copied into palloc'd memory and the document freed before anything can
 * raise an error.
 */
#include "postgres.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "interactions_cron/xml_response.h"

/* Options of every parse: see the top of this file. */
#define XML_RESPONSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA)

/*
 * FirstElementNamed returns the first element in document order, at or
 * below node, whose local name is name (namespaces are ignored: STS answers
 * in its own, S3 in another).
 */
static xmlNodePtr
FirstElementNamed(xmlNodePtr node, const char *name)
{
	for (; node != NULL; node = node->next)
	{
		xmlNodePtr	found;

		if (node->type != XML_ELEMENT_NODE)
			continue;
		if (xmlStrcmp(node->name, (const xmlChar *) name) == 0)
			return node;
		found = FirstElementNamed(node->children, name);
		if (found != NULL)
			return found;
	}
	return NULL;
}

/*
 * XmlResponseTexts parses a response and sets texts[i] to the text of the
 * first element named names[i] (palloc'd, entities decoded), or NULL where
 * there is none.  It returns false, with every text NULL, when the response
 * is not well-formed XML.
 */
bool
XmlResponseTexts(const char *xml, size_t length, int count, const char *const *names, char **texts)
{
	xmlDocPtr	document;
	xmlChar   **found = palloc0(sizeof(xmlChar *) * Max(count, 1));

	for (int i = 0; i < count; i++)
		texts[i] = NULL;
	if (length > INT_MAX)
		return false;
	document = xmlReadMemory(xml, (int) length, NULL, NULL, XML_RESPONSE_OPTIONS);
	if (document == NULL)
		return false;

	/* Nothing below can raise an error until the document is freed. */
	for (int i = 0; i < count; i++)
	{
		xmlNodePtr	element = FirstElementNamed(xmlDocGetRootElement(document), names[i]);

		if (element != NULL)
			found[i] = xmlNodeGetContent(element);
	}
	xmlFreeDoc(document);

	for (int i = 0; i < count; i++)
	{
		if (found[i] == NULL)
			continue;
		texts[i] = pstrdup((const char *) found[i]);
		explicit_bzero(found[i], strlen((const char *) found[i]));
		xmlFree(found[i]);
		found[i] = NULL;
	}
	pfree(found);
	return true;
}
