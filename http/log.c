/*
 * log.c
 *	  The shim's log lines on stderr.  Methods, paths, libpq messages and
 *	  libmicrohttpd's own messages can carry bytes a client chose, so every
 *	  line is escaped before it is written: no control byte (an ANSI escape,
 *	  a bare CR faking a second line) ever reaches a terminal or a log file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

/* Longer lines are cut; a log line never needs more. */
#define LOG_LINE_BYTES 2048

/*
 * IsPlainByte says whether a byte may be logged as it is: printable ASCII.
 */
static bool
IsPlainByte(unsigned char byte)
{
	return byte >= 0x20 && byte < 0x7f;
}

/*
 * EscapeInto copies text into out (room for 4 bytes per input byte and a
 * NUL), writing every byte outside printable ASCII as \xNN, and also
 * double quotes and backslashes when quoting, so a quoted field cannot end
 * early.  It returns the end of what it wrote.
 */
static char *
EscapeInto(char *out, const char *text, bool quoting)
{
	static const char hex[] = "0123456789abcdef";

	for (const unsigned char *c = (const unsigned char *) text; *c != '\0'; c++)
	{
		if (quoting && (*c == '"' || *c == '\\'))
		{
			*out++ = '\\';
			*out++ = (char) *c;
		}
		else if (IsPlainByte(*c))
			*out++ = (char) *c;
		else
		{
			*out++ = '\\';
			*out++ = 'x';
			*out++ = hex[*c >> 4];
			*out++ = hex[*c & 0xf];
		}
	}
	*out = '\0';
	return out;
}

/*
 * LogQuoted returns text in double quotes, escaped (malloc'd): the form of
 * every client-supplied field in a log line.
 */
char *
LogQuoted(const char *text)
{
	char	   *out = malloc(strlen(text) * 4 + 3);
	char	   *end;

	if (out == NULL)
		abort();
	out[0] = '"';
	end = EscapeInto(out + 1, text, true);
	end[0] = '"';
	end[1] = '\0';
	return out;
}

/*
 * ShimLogV writes one escaped line, prefixed with the program's name; a
 * trailing newline in the message is dropped (the line gets its own).
 */
void
ShimLogV(const char *format, va_list arguments)
{
	char		message[LOG_LINE_BYTES];
	char		escaped[LOG_LINE_BYTES * 4 + 1];
	size_t		length;

	vsnprintf(message, sizeof(message), format, arguments);
	length = strlen(message);
	while (length > 0 && (message[length - 1] == '\n' || message[length - 1] == '\r'))
		message[--length] = '\0';
	EscapeInto(escaped, message, false);
	/* One call per line: stdio's lock keeps threads' lines whole. */
	fprintf(stderr, "interactions-cron-http: %s\n", escaped);
}

/*
 * ShimLog is ShimLogV with the arguments inline.
 */
void
ShimLog(const char *format,...)
{
	va_list		arguments;

	va_start(arguments, format);
	ShimLogV(format, arguments);
	va_end(arguments);
}

/*
 * LogFromMhd is libmicrohttpd's logger (MHD_OPTION_EXTERNAL_LOGGER): its
 * messages may quote what a client sent, so they are escaped like ours.
 */
void
LogFromMhd(void *cls, const char *format, va_list arguments)
{
	(void) cls;
	ShimLogV(format, arguments);
}
