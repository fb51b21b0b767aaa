/*
 * xml_response.c
 *	  Reading a web service's XML response (S3, STS) with libxml2: the text
 *	  of named elements (an error's code and message, a multipart upload's
 *	  id, STS's credentials) and a ListObjectsV2 page's keys.
 *
 * A response comes from the network, so it is parsed as untrusted text:
 * no network access (XML_PARSE_NONET), no DTD loaded and no entity
 * substituted (neither XML_PARSE_DTDLOAD nor XML_PARSE_NOENT; a document
 * with a DTD is refused), only text and CDATA nodes read, and no message of
 * libxml2's own on the server's stderr, since the text may hold secrets (a
 * session token).  libxml2 allocates with malloc: every document is freed,
 * whatever error is raised, and what is kept is copied into palloc'd memory
 * first.
 */
#include "postgres.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "lib/stringinfo.h"

#include "interactions_cron/xml_response.h"

/* Options of every parse: see the top of this file. */
#define XML_RESPONSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

/*
 * ParseDocument parses an answer, or returns NULL for one that is not
 * well-formed XML or has a DTD.
 */
static xmlDocPtr
ParseDocument(const char *xml, size_t length)
{
	xmlDocPtr	document;

	if (length == 0 || length > (size_t) INT_MAX)
		return NULL;
	document = xmlReadMemory(xml, (int) length, NULL, NULL, XML_RESPONSE_OPTIONS);
	if (document != NULL && (document->intSubset != NULL || document->extSubset != NULL ||
							 xmlDocGetRootElement(document) == NULL))
	{
		xmlFreeDoc(document);
		return NULL;
	}
	return document;
}

/*
 * IsElement says whether a node is an element of the given local name (S3
 * puts its answers in its own XML namespace).
 */
static bool
IsElement(xmlNodePtr node, const char *name)
{
	return node->type == XML_ELEMENT_NODE && xmlStrcmp(node->name, (const xmlChar *) name) == 0;
}

/*
 * ElementText returns an element's text, in palloc'd memory: its text and
 * CDATA children only, never an entity's expansion.
 */
static char *
ElementText(xmlNodePtr element)
{
	StringInfoData text;

	initStringInfo(&text);
	for (xmlNodePtr child = element->children; child != NULL; child = child->next)
		if ((child->type == XML_TEXT_NODE || child->type == XML_CDATA_SECTION_NODE) &&
			child->content != NULL)
			appendStringInfoString(&text, (const char *) child->content);
	return text.data;
}

/*
 * FindElement returns the first element of a local name at or below node,
 * in document order, or NULL.
 */
static xmlNodePtr
FindElement(xmlNodePtr node, const char *name)
{
	for (; node != NULL; node = node->next)
	{
		xmlNodePtr	found;

		if (node->type != XML_ELEMENT_NODE)
			continue;
		if (IsElement(node, name))
			return node;
		found = FindElement(node->children, name);
		if (found != NULL)
			return found;
	}
	return NULL;
}

/*
 * XmlResponseTexts parses a response and sets texts[i] to the text of the
 * first element of local name names[i] (palloc'd), or NULL where there is
 * none (namespaces are ignored: STS answers in its own, S3 in another).  It
 * returns false, with every text NULL, when the response is not well-formed
 * XML or has a DTD.
 */
bool
XmlResponseTexts(const char *xml, size_t length, int count, const char *const *names, char **texts)
{
	xmlDocPtr	document = ParseDocument(xml, length);

	for (int i = 0; i < count; i++)
		texts[i] = NULL;
	if (document == NULL)
		return false;
	PG_TRY();
	{
		for (int i = 0; i < count; i++)
		{
			xmlNodePtr	element = FindElement(xmlDocGetRootElement(document), names[i]);

			if (element != NULL)
				texts[i] = ElementText(element);
		}
	}
	PG_FINALLY();
	{
		xmlFreeDoc(document);
	}
	PG_END_TRY();
	return true;
}

/*
 * CollectPage reads a ListBucketResult's children into page: each Contents'
 * Key, IsTruncated and NextContinuationToken.  It returns false when a
 * Contents has no Key or the page holds more than maxKeys keys.
 */
static bool
CollectPage(xmlNodePtr root, int maxKeys, XmlListPage *page)
{
	for (xmlNodePtr child = root->children; child != NULL; child = child->next)
	{
		if (IsElement(child, "Contents"))
		{
			xmlNodePtr	key = FindElement(child->children, "Key");

			if (key == NULL || list_length(page->keys) >= maxKeys)
				return false;
			page->keys = lappend(page->keys, ElementText(key));
		}
		else if (IsElement(child, "IsTruncated"))
			page->truncated = strcmp(ElementText(child), "true") == 0;
		else if (IsElement(child, "NextContinuationToken"))
			page->nextToken = ElementText(child);
	}
	return true;
}

/*
 * XmlReadListPage reads one ListObjectsV2 page into page, and returns
 * false when the answer is not a ListBucketResult of at most maxKeys keys,
 * each with its Key.
 */
bool
XmlReadListPage(const char *xml, size_t length, int maxKeys, XmlListPage *page)
{
	xmlDocPtr	document = ParseDocument(xml, length);
	xmlNodePtr	root;
	volatile bool parsed = false;

	page->keys = NIL;
	page->truncated = false;
	page->nextToken = NULL;
	if (document == NULL)
		return false;
	PG_TRY();
	{
		root = xmlDocGetRootElement(document);
		parsed = IsElement(root, "ListBucketResult") && CollectPage(root, maxKeys, page);
	}
	PG_FINALLY();
	{
		xmlFreeDoc(document);
	}
	PG_END_TRY();
	return parsed;
}
